# The Debian 12 root file system scripts/systemd-test.sh boots (sourced, not run).
#
# rootfs_prepare PACKAGES... : sets ROOTFS to a cached debootstrap root holding systemd as init and
#   PACKAGES, building it first if the cache lacks it. The cache is keyed by the package list, so
#   a package added to the list (or a new Depends of the .deb) makes a new root and the old one is
#   never changed in place: runs boot a throwaway copy of it. Returns 3 (with ROOTFS_SKIP set to the
#   reason) when the mirror cannot be reached, so the caller can skip rather than fail.
# rootfs_mirror : prints the Debian mirror this machine's own apt sources name for bookworm.

ROOTFS_CACHE="${SYSTEMD_TEST_CACHE:-/var/cache/tunnelmesh-test}"
ROOTFS_SUITE=bookworm
# Bumped when the recipe below changes in a way the package list does not show.
ROOTFS_RECIPE=1

rootfs_mirror() {
  if [ -n "${SYSTEMD_TEST_MIRROR:-}" ]; then
    echo "$SYSTEMD_TEST_MIRROR"
    return 0
  fi
  # deb822 sources (Debian 12's default): the first stanza whose Suites has the bare suite.
  local file
  for file in /etc/apt/sources.list.d/*.sources; do
    [ -r "$file" ] || continue
    awk -v suite="$ROOTFS_SUITE" '
      function flush() { if (uris != "" && (" " suites " ") ~ (" " suite " ")) { split(uris, u, " "); print u[1]; found = 1; exit } uris = ""; suites = "" }
      /^[ \t]*$/ { flush(); next }
      /^URIs:/ { sub(/^URIs:[ \t]*/, ""); uris = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      END { if (!found) flush() }
    ' "$file"
  done | head -n 1 | grep . && return 0
  # One-line sources: "deb [options] URI bookworm main".
  grep -h -E "^[[:space:]]*deb[[:space:]]" /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | sed -E 's/\[[^]]*\]//' \
    | awk -v suite="$ROOTFS_SUITE" '$3 == suite { print $2; exit }' | grep .
}

rootfs_prepare() {
  local packages key mirror partial started
  packages="$(printf '%s\n' "$@" | sort -u | paste -sd, -)"
  key="$(printf '%s|%s|%s' "$ROOTFS_RECIPE" "$ROOTFS_SUITE" "$packages" | sha256sum | cut -c1-16)"
  ROOTFS="$ROOTFS_CACHE/rootfs-$ROOTFS_SUITE-$key"
  if [ -f "$ROOTFS/.tunnelmesh-complete" ]; then
    # Marks it used, for the pruning below.
    touch "$ROOTFS/.tunnelmesh-complete"
    echo "root file system: cached $ROOTFS"
    return 0
  fi
  mkdir -p "$ROOTFS_CACHE"
  if ! mirror="$(rootfs_mirror)"; then
    ROOTFS_SKIP="no Debian mirror for $ROOTFS_SUITE in /etc/apt/sources.list{,.d} (set SYSTEMD_TEST_MIRROR=URI)"
    return 3
  fi
  # Asked first so that an offline machine is told so, not shown debootstrap's retries.
  local unreachable
  if ! unreachable="$(curl -fsS --max-time 20 -o /dev/null "$mirror/dists/$ROOTFS_SUITE/Release" 2>&1)"; then
    ROOTFS_SKIP="the Debian mirror $mirror is unreachable (${unreachable:0:200}), and no cached root $ROOTFS"
    return 3
  fi
  # A root without its completion mark is what an interrupted run left: never boot it.
  rm -rf "$ROOTFS"
  partial="$ROOTFS.partial.$$"
  rm -rf "$partial"
  echo "root file system: debootstrap $ROOTFS_SUITE from $mirror with $packages"
  started=$SECONDS
  if ! debootstrap --variant=minbase --include="$packages" "$ROOTFS_SUITE" "$partial" "$mirror" \
    >"$partial.log" 2>&1; then
    echo "debootstrap failed; the end of its log ($partial.log):" >&2
    tail -n 20 "$partial.log" >&2
    rm -rf "$partial"
    return 1
  fi
  # No network in the container: apt must never try to fetch, and nothing should wait for it.
  rm -f "$partial"/etc/apt/sources.list
  : >"$partial/etc/machine-id"
  echo "tunnelmesh-test" >"$partial/etc/hostname"
  printf '%s\n' "$packages" >"$partial/.tunnelmesh-complete"
  rm -f "$partial.log"
  # A concurrent run may have built the same root meanwhile; either copy is good.
  if ! mv -T "$partial" "$ROOTFS" 2>/dev/null; then
    rm -rf "$partial"
  fi
  echo "root file system: built in $((SECONDS - started)) s ($(du -sm "$ROOTFS" | cut -f1) MB)"
  # Roots of older package lists, unused for a week, go (about 300 MB each).
  find "$ROOTFS_CACHE" -mindepth 2 -maxdepth 2 -name .tunnelmesh-complete -path "*/rootfs-*" -mtime +7 \
    -printf '%h\n' | while read -r old; do
    if [ "$old" != "$ROOTFS" ]; then
      rm -rf --one-file-system "$old"
      echo "root file system: removed $old, unused for a week"
    fi
  done
  return 0
}
