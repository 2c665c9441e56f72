#!/usr/bin/env bash
# Checks the Debian package scripts/package.sh builds: every file in place with its mode and
# owner, the conffiles, Depends without the Swift runtime, binaries stripped and runnable, man
# pages that render cleanly and document every mesh.json key the loader knows, completions,
# copyright naming every linked Swift package, the example config valid, and lintian without an
# error or warning. Installing it under a real systemd is scripts/systemd-test.sh's part.
#
# Usage: scripts/package-check.sh [DEB]
#   DEB  the package to check; without it, one is built with
#        `scripts/package.sh --skip-build --fast` from the release binaries already built
#        (swift build -c release --static-swift-stdlib; scripts/package.sh without --skip-build
#        builds them)
# Exit status: 0 when every check passed, 1 when one failed (each failure is printed), 2 on usage.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "package-check.sh: $*" >&2; exit 2; }
[ $# -le 1 ] || die "usage: scripts/package-check.sh [DEB]"
case "${1:-}" in -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

. "$repo/scripts/test-packages.sh"
install_package_tools package-check.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# A version that must fail validation before anything is built.
if out="$("$repo/scripts/package.sh" --skip-build --version 'not a version' --output "$work" 2>&1)"; then
  fail "package.sh accepted --version 'not a version'"
elif ! grep -q -- '--version: "not a version-1" is not a valid Debian version' <<<"$out"; then
  fail "package.sh --version 'not a version': unexpected message: $out"
else
  pass "package.sh refuses an invalid --version with a message naming it"
fi

deb="${1:-}"
if [ -z "$deb" ]; then
  deb="$("$repo/scripts/package.sh" --skip-build --fast --output "$work/out" | tail -n 1)"
fi
[ -f "$deb" ] || die "no package at $deb"
echo "checking $deb"

# --- control fields -------------------------------------------------------------------------
field() { dpkg-deb --field "$deb" "$1"; }
[ "$(field Package)" = tunnelmesh ] || fail "Package is '$(field Package)', not tunnelmesh"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is '$(field Architecture)'"
version="$(field Version)"
case "$(basename "$deb")" in
  "tunnelmesh_${version}_$(field Architecture).deb") pass "named for its version $version" ;;
  *) fail "$(basename "$deb") is not named tunnelmesh_${version}_$(field Architecture).deb" ;;
esac
depends="$(field Depends)"
for library in adduser libc6 libssl3 libsystemd0 libpq5 libstdc++6 libgcc-s1; do
  # Package names only, one a line: "libssl3 (>= 3.0.0)" -> libssl3.
  sed 's/, /\n/g; s/ ([^)]*)//g' <<<"$depends" | grep -qxF -- "$library" || fail "Depends lacks $library: $depends"
done
if grep -Eiq 'swift|foundation|dispatch|icu' <<<"$depends"; then
  fail "Depends names the Swift runtime: $depends"
else
  pass "Depends: $depends"
fi

# --- files, modes, owners -------------------------------------------------------------------
dpkg-deb --contents "$deb" | awk '{ print $1, $2, $6 }' > "$work/contents"
expect() { # MODE PATH
  if grep -qxF -- "$1 root/root ./$2" "$work/contents"; then
    return 0
  fi
  fail "expected $1 root/root ./$2, the package has: $(grep -F " ./$2" "$work/contents" || echo nothing)"
}
expect -rwxr-xr-x usr/bin/meshd
expect -rwxr-xr-x usr/bin/meshctl
expect -rw-r--r-- lib/systemd/system/meshd.service
if [ -e "$repo/units/meshd-generator" ]; then
  expect -rwxr-xr-x lib/systemd/system-generators/meshd-generator
fi
expect drwxr-xr-x etc/meshd/
expect drwxr-xr-x etc/meshd/pki/
expect -rw-r--r-- etc/meshd/mesh.json
expect -rw-r--r-- etc/meshd/meshd.env
for page in man8/meshd.8.gz man8/meshctl.8.gz man5/mesh.json.5.gz; do
  expect -rw-r--r-- "usr/share/man/$page"
done
for binary in meshd meshctl; do
  expect -rw-r--r-- "usr/share/bash-completion/completions/$binary"
  expect -rw-r--r-- "usr/share/zsh/vendor-completions/_$binary"
  expect -rw-r--r-- "usr/share/fish/vendor_completions.d/$binary.fish"
done
expect -rw-r--r-- usr/share/doc/tunnelmesh/copyright
expect -rw-r--r-- usr/share/doc/tunnelmesh/changelog.Debian.gz
expect -rw-r--r-- usr/share/lintian/overrides/tunnelmesh
if awk '$2 != "root/root"' "$work/contents" | grep -q .; then
  fail "entries not owned by root/root: $(awk '$2 != "root/root"' "$work/contents")"
fi
pass "$(wc -l < "$work/contents") entries checked for mode and owner"

dpkg-deb --ctrl-tarfile "$deb" | tar -x -C "$work" ./conffiles ./postinst ./prerm ./postrm
if [ "$(cat "$work/conffiles")" = "$(printf '%s\n' /etc/meshd/mesh.json /etc/meshd/meshd.env)" ]; then
  pass "conffiles: /etc/meshd/mesh.json /etc/meshd/meshd.env"
else
  fail "conffiles are: $(cat "$work/conffiles")"
fi
for script in postinst prerm postrm; do
  sh -n "$work/$script" || fail "$script does not parse"
done

# --- the files themselves -------------------------------------------------------------------
root="$work/root"
dpkg-deb -x "$deb" "$root"
for binary in meshd meshctl; do
  file="$root/usr/bin/$binary"
  if readelf -S "$file" | grep -Eq '\.symtab|\.debug_'; then fail "$binary is not stripped"; fi
  if ldd "$file" | grep -Eq 'libswift|libFoundation|lib_Foundation|libdispatch|not found'; then
    fail "$binary loads the Swift runtime or a missing library: $(ldd "$file")"
  fi
  "$file" --help > "$work/$binary.help" 2>&1 || fail "$binary --help failed: $(cat "$work/$binary.help")"
done
pass "meshd and meshctl stripped, load no Swift runtime, run"
grep -q '^ExecStart=/usr/bin/meshd ' "$root/lib/systemd/system/meshd.service" \
  || fail "meshd.service does not start /usr/bin/meshd: $(grep ExecStart "$root/lib/systemd/system/meshd.service")"
if grep -q /usr/local "$root/lib/systemd/system/meshd.service"; then fail "meshd.service still names /usr/local"; fi

for page in man8/meshd.8 man8/meshctl.8 man5/mesh.json.5; do
  warnings="$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$root/usr/share/man/$page.gz" 2>&1 >/dev/null || true)"
  [ -z "$warnings" ] || fail "$page renders with warnings: $warnings"
done
zcat "$root/usr/share/man/man8/meshd.8.gz" | grep -q -- 'config' || fail "meshd.8 does not document --config"
for command in status peers services backends ping reload check pki; do
  zcat "$root/usr/share/man/man8/meshctl.8.gz" | grep -q "^\.It Em $command\$" || fail "meshctl.8 has no $command"
done
# Every key the loader accepts is documented in mesh.json(5).
/usr/bin/python3 - "$repo/Sources/MeshConfig/ConfigDecoder.swift" > "$work/keys" <<'EOF'
import re, sys
source = open(sys.argv[1]).read()
lists = re.findall(r'(?:knownKeys:|topLevelKeys =)\s*\[([^\]]*)\]', source)
print("\n".join(sorted({key for body in lists for key in re.findall(r'"([a-z_]+)"', body)})))
EOF
[ "$(wc -l < "$work/keys")" -ge 30 ] || fail "read only $(wc -l < "$work/keys") keys from ConfigDecoder.swift"
zcat "$root/usr/share/man/man5/mesh.json.5.gz" > "$work/mesh.json.5" 2>/dev/null || true
undocumented=""
while read -r key; do
  grep -qw -- "$key" "$work/mesh.json.5" || undocumented="$undocumented $key"
done < "$work/keys"
if [ -n "$undocumented" ]; then fail "mesh.json.5 does not document:$undocumented"; else pass "mesh.json.5 documents all $(wc -l < "$work/keys") keys"; fi

for binary in meshd meshctl; do
  bash -n "$root/usr/share/bash-completion/completions/$binary" || fail "bash completion for $binary does not parse"
  grep -q "complete .*$binary" "$root/usr/share/bash-completion/completions/$binary" || fail "bash completion registers no $binary"
  head -n 1 "$root/usr/share/zsh/vendor-completions/_$binary" | grep -qx "#compdef $binary" || fail "_$binary lacks #compdef"
  grep -q "complete -c '\{0,1\}$binary" "$root/usr/share/fish/vendor_completions.d/$binary.fish" \
    || fail "$binary.fish completes no $binary"
done

# Every Swift package linked in is named in the copyright file.
for identity in $(sed -n 's/.*"identity" : "\(.*\)".*/\1/p' "$repo/Package.resolved"); do
  grep -q "checkouts/$identity/\*" "$root/usr/share/doc/tunnelmesh/copyright" || fail "copyright does not list $identity"
done
zcat "$root/usr/share/doc/tunnelmesh/changelog.Debian.gz" | head -n 1 | grep -qF "tunnelmesh ($version)" \
  || fail "changelog.Debian does not start with version $version"

# The example configuration loads, dials nobody, and names no node in meshd.env.
/usr/bin/python3 -c 'import json, sys; n = json.load(open(sys.argv[1]))["nodes"]; sys.exit(len(n) != 1)' \
  "$root/etc/meshd/mesh.json" || fail "the example mesh.json declares more than one node: it would dial peers"
grep -qx '#MESHD_NODE=' "$root/etc/meshd/meshd.env" || fail "meshd.env does not leave MESHD_NODE commented out"
if grep -Eq '^[^#]' "$root/etc/meshd/meshd.env"; then fail "meshd.env sets something: $(grep -E '^[^#]' "$root/etc/meshd/meshd.env")"; fi
meshctl="$root/usr/bin/meshctl"
mkdir -p "$work/etc/pki"
cp "$root/etc/meshd/mesh.json" "$work/etc/mesh.json"
node="$(/usr/bin/python3 -c 'import json, sys; print(next(iter(json.load(open(sys.argv[1]))["nodes"])))' "$work/etc/mesh.json")"
mesh="$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["mesh"])' "$work/etc/mesh.json")"
"$meshctl" pki init --mesh "$mesh" --dir "$work/etc/pki" > "$work/pki.log" 2>&1 \
  && "$meshctl" pki issue "$node" --dir "$work/etc/pki" >> "$work/pki.log" 2>&1 \
  || fail "meshctl pki for the example failed: $(cat "$work/pki.log")"
if "$meshctl" check "$work/etc/mesh.json" --node "$node" > "$work/check.log" 2>&1; then
  pass "the example mesh.json passes meshctl check with a fresh PKI for $node"
else
  fail "meshctl check of the example: $(cat "$work/check.log")"
fi

# --- lintian --------------------------------------------------------------------------------
# Errors and warnings fail; info-level tags are left (spelling in the linked-in Swift runtime's
# strings, and hardening-no-bindnow/fortify: the Swift toolchain links without -z now).
if lintian --fail-on error,warning "$deb" > "$work/lintian.log" 2>&1; then
  pass "lintian: no error or warning"
else
  fail "lintian: $(grep -v 'running with root privileges' "$work/lintian.log")"
fi

if [ "$failures" -gt 0 ]; then
  echo "package-check.sh: $failures check(s) failed"
  exit 1
fi
echo "package-check.sh: all checks passed"
