#!/usr/bin/env bash
# Builds the Debian package tunnelmesh_<version>_<arch>.deb with dpkg-deb: meshd and meshctl with
# the Swift runtime linked in (a node needs no Swift toolchain), meshd.service and the socket-unit
# generator, an example /etc/meshd (conffiles), man pages, shell completions, and the maintainer
# scripts that create the meshd user. Installs on Debian 12: apt-get install ./tunnelmesh_*.deb
#
# Usage: scripts/package.sh [--version V] [--output DIR] [--skip-build] [--from DIR] [--fast]
#   --version V    upstream version (default: `git describe --tags` of a vX.Y.Z tag, else the
#                  agent's version in Sources/meshd/ControlService.swift plus +git<commit time>.<sha>);
#                  the package is V-1 unless V has a Debian revision (V-R) already
#   --output DIR   where the .deb goes (default: the repository's top directory); the path of the
#                  .deb is the last line printed
#   --skip-build   do not run `swift build -c release --static-swift-stdlib`; take what it built
#   --from DIR     take meshd and meshctl from DIR (implies --skip-build); they must have been built
#                  with --static-swift-stdlib
#   --fast         compress with xz -1 instead of -6: about 3 times faster, the .deb 15% larger
#                  (for tests; a release keeps the default)
#   --scratch-path DIR  SwiftPM's build directory for the release build (default: .build); a
#                  separate one lets it run while another `swift build`/`swift test` holds .build's lock
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
here="$repo/scripts/package"
version=""
output="$repo"
build=1
from=""
xz_level=6
scratch="$repo/.build"

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
die() { echo "package.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --version) [ $# -ge 2 ] || die "--version needs a version"; version="$2"; shift 2 ;;
    --version=*) version="${1#*=}"; shift ;;
    --output) [ $# -ge 2 ] || die "--output needs a directory"; output="$2"; shift 2 ;;
    --output=*) output="${1#*=}"; shift ;;
    --skip-build) build=0; shift ;;
    --from) [ $# -ge 2 ] || die "--from needs a directory"; from="$2"; build=0; shift 2 ;;
    --from=*) from="${1#*=}"; build=0; shift ;;
    --fast) xz_level=1; shift ;;
    --scratch-path) [ $# -ge 2 ] || die "--scratch-path needs a directory"; scratch="$2"; shift 2 ;;
    --scratch-path=*) scratch="${1#*=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (try --help)" ;;
  esac
done
case "$scratch" in /*) ;; *) scratch="$PWD/$scratch" ;; esac

for tool in dpkg-deb dpkg-shlibdeps strip objdump gzip; do
  command -v "$tool" >/dev/null \
    || die "$tool is missing: install dpkg-dev and binutils (scripts/test-packages.sh: install_package_tools)"
done

# The one place the package version comes from.
if [ -z "$version" ]; then
  if tag="$(git -C "$repo" describe --tags --match 'v[0-9]*' 2>/dev/null)"; then
    # v1.2.0 -> 1.2.0; v1.2.0-5-gabc1234 (5 commits after the tag) -> 1.2.0+git<time>.abc1234
    version="${tag#v}"
    case "$version" in *-g*) version="${version%%-*}+git" ;; esac
  else
    version="$(sed -n 's/^ *static let version = "\(.*\)"$/\1/p' "$repo/Sources/meshd/ControlService.swift")"
    [ -n "$version" ] || die "no version: tag a release vX.Y.Z, or pass --version V"
    version="$version+git"
  fi
  # The commit time keeps later commits sorting later (a hash alone would not).
  case "$version" in
    *+git) version="$version$(TZ=UTC git -C "$repo" log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S).$(git -C "$repo" rev-parse --short=7 HEAD)" ;;
  esac
fi
case "$version" in *-*) ;; *) version="$version-1" ;; esac
dpkg --validate-version "$version" 2>/dev/null || die "--version: \"$version\" is not a valid Debian version (see deb-version(7))"
case "$version" in [0-9]*) ;; *) die "--version: \"$version\" must start with a digit" ;; esac
arch="$(dpkg --print-architecture)"

if [ "$build" -eq 1 ]; then
  echo "==> building release binaries (swift build -c release --static-swift-stdlib)"
  (cd "$repo" && swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product meshd \
    && swift build -c release --static-swift-stdlib --scratch-path "$scratch" --product meshctl)
fi
if [ -z "$from" ]; then
  from="$(cd "$repo" && swift build -c release --static-swift-stdlib --scratch-path "$scratch" --show-bin-path)"
fi
for binary in meshd meshctl; do
  [ -x "$from/$binary" ] || die "no $binary in $from: build it (drop --skip-build) or pass --from DIR"
  # A node has no Swift toolchain: a binary that loads the Swift runtime would not start there.
  if objdump -p "$from/$binary" | grep -E 'NEEDED +(libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime)' >/dev/null; then
    die "$from/$binary loads the Swift runtime as shared libraries; build it with swift build -c release --static-swift-stdlib"
  fi
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/root"
doc="$root/usr/share/doc/tunnelmesh"
echo "==> staging tunnelmesh $version ($arch) in $root"
install -d -m 0755 "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$doc" \
  "$root/usr/share/man/man5" "$root/usr/share/man/man8" "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"

# Stripped as dh_strip does; the debug info is 90% of an unstripped binary.
for binary in meshd meshctl; do
  install -m 0755 "$from/$binary" "$root/usr/bin/$binary"
  strip --remove-section=.comment --remove-section=.note --strip-unneeded "$root/usr/bin/$binary"
done

# The units name /usr/local/bin/meshd (scripts/install.sh's default prefix); the package's is /usr.
sed 's#/usr/local/bin/meshd#/usr/bin/meshd#g' "$repo/units/meshd.service" > "$root/lib/systemd/system/meshd.service"
chmod 0644 "$root/lib/systemd/system/meshd.service"
if [ -e "$repo/units/meshd-generator" ]; then
  install -d -m 0755 "$root/lib/systemd/system-generators"
  install -m 0755 "$repo/units/meshd-generator" "$root/lib/systemd/system-generators/meshd-generator"
else
  echo "    note: no units/meshd-generator in this tree: the package has no socket-unit generator"
fi

# Example configuration, conffiles. postinst gives /etc/meshd to group meshd (dpkg-statoverride);
# the .deb itself holds them with Debian's usual modes.
install -d -m 0755 "$root/etc/meshd" "$root/etc/meshd/pki"
install -m 0644 "$here/mesh.json" "$root/etc/meshd/mesh.json"
install -m 0644 "$here/meshd.env" "$root/etc/meshd/meshd.env"
printf '%s\n' /etc/meshd/mesh.json /etc/meshd/meshd.env > "$root/DEBIAN/conffiles"

# Man pages: the commands' from their own argument definitions by swift-argument-parser's
# generate-manual tool, the one its `swift package plugin generate-manual` runs. The plugin itself
# is not used: it rebuilds the whole package in release mode without --static-swift-stdlib (into
# the same build directory, replacing the static binaries) and documents only what it built, not
# --from DIR. The tool is built from the pinned swift-argument-parser (Package.resolved), which
# has no dependencies, so it builds offline in about a minute.
(cd "$repo" && swift package resolve --scratch-path "$scratch" >/dev/null)
manual_tool_package="$scratch/checkouts/swift-argument-parser"
[ -e "$manual_tool_package/Package.swift" ] || die "no swift-argument-parser checkout in $scratch/checkouts (swift package resolve)"
swift build --package-path "$manual_tool_package" --scratch-path "$scratch/package-tools" \
  --product generate-manual >/dev/null
manual_tool="$(swift build --package-path "$manual_tool_package" --scratch-path "$scratch/package-tools" --show-bin-path)/generate-manual"
# The commit's date, so the same commit makes the same pages.
page_date="$(TZ=UTC git -C "$repo" log -1 --format=%cd --date=format-local:%Y-%m-%d)"
for binary in meshd meshctl; do
  "$manual_tool" "$root/usr/bin/$binary" --section 8 --date "$page_date" --output-directory "$work"
  # A blank line inside a command's discussion comes out as an empty mdoc line, which groff warns
  # about; a paragraph break is what it means.
  sed 's/^$/.Pp/' "$work/$binary.8" | gzip -9n > "$root/usr/share/man/man8/$binary.8.gz"
done
gzip -9n -c "$here/mesh.json.5" > "$root/usr/share/man/man5/mesh.json.5.gz"

# Shell completions, from the binaries' own argument definitions.
for binary in meshd meshctl; do
  # bash-completion sources the file: a #! line would only mislead.
  "$root/usr/bin/$binary" --generate-completion-script bash | sed '1{/^#!/d}' \
    > "$root/usr/share/bash-completion/completions/$binary"
  "$root/usr/bin/$binary" --generate-completion-script zsh > "$root/usr/share/zsh/vendor-completions/_$binary"
  "$root/usr/bin/$binary" --generate-completion-script fish > "$root/usr/share/fish/vendor_completions.d/$binary.fish"
done

maintainer="${DEBFULLNAME:-$(git -C "$repo" log -1 --format=%an)} <${DEBEMAIL:-$(git -C "$repo" log -1 --format=%ae)}>"
install -m 0644 "$here/copyright" "$doc/copyright"
{
  echo "tunnelmesh ($version) unstable; urgency=medium"
  echo
  echo "  * Built by scripts/package.sh from commit $(git -C "$repo" rev-parse --short=12 HEAD)."
  echo
  echo " -- $maintainer  $(TZ=UTC git -C "$repo" log -1 --format=%cd --date=format-local:'%a, %d %b %Y %H:%M:%S +0000')"
} | gzip -9n > "$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

install -d -m 0755 "$root/usr/share/lintian/overrides"
grep -v '^#' "$here/lintian-overrides" > "$root/usr/share/lintian/overrides/tunnelmesh"
chmod 0644 "$root/usr/share/lintian/overrides/tunnelmesh"

install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"

# Depends: what the binaries load, as dpkg-shlibdeps finds it (their NEEDED libraries, mapped to
# packages by the shlibs and symbols files of the installed ones), plus the maintainer scripts'
# adduser. dpkg-shlibdeps wants a debian/control to read; a minimal one is enough.
install -d "$work/debian"
printf 'Source: tunnelmesh\n\nPackage: tunnelmesh\nArchitecture: any\n' > "$work/debian/control"
shlibs="$(cd "$work" && dpkg-shlibdeps -O -e root/usr/bin/meshd -e root/usr/bin/meshctl 2>"$work/shlibdeps.log")" \
  || { cat "$work/shlibdeps.log" >&2; die "dpkg-shlibdeps failed"; }
depends="adduser, ${shlibs#shlibs:Depends=}"
installed_size="$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)"

cat > "$root/DEBIAN/control" <<EOF
Package: tunnelmesh
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Section: net
Priority: optional
Description: secure tunnel mesh for PostgreSQL clusters
 meshd, run on every node, keeps one mutually authenticated TLS 1.3 tunnel
 to each peer declared in /etc/meshd/mesh.json, carries TCP streams through
 them multiplexed over HTTP/2, notices and heals a broken tunnel in seconds,
 and balances PostgreSQL connections: writes to the primary, reads over
 healthy standbys. meshctl shows the tunnels and database backends and
 manages the mesh's certificates.
 .
 Socket units are generated at boot from mesh.json and the node name in
 /etc/meshd/meshd.env, so every node installs the same package and the same
 mesh.json.
EOF
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

mkdir -p "$output"
deb="$(cd "$output" && pwd)/tunnelmesh_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz "-z$xz_level" --build "$root" "$deb" >/dev/null
echo "==> built $(du -h "$deb" | cut -f1) package; Depends: $depends"
echo "$deb"
