#!/usr/bin/env bash
# Builds release archives that `notation plugin install --file` accepts, one per plugin:
#   notation-<name>_<version>_<os>_<arch>.tar.gz   (exactly the executable and LICENSE)
# plus checksums.txt in the format `sha256sum -c` reads.
#
# Usage: scripts/package.sh [--out DIR] [--target TRIPLE] [--profile PROFILE] [plugin...]
#   --out      where the archives go (default: dist/)
#   --target   a Rust target triple with its standard library installed
#              (default: the host; e.g. aarch64-unknown-linux-gnu, see README)
#   --profile  cargo profile (default: release; the tests use dev: same layout, no extra build)
#   --no-build package the executables already in the target directory (the tests: the ones
#              cargo test built), instead of building the selected plugins first
#   plugin...  plugin names (pkcs11, aws-kms, ...); default: every plugin under plugins/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh
source scripts/plugins.sh

out=dist target="" profile=release wanted=() build=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --profile) profile=$2; shift 2 ;;
    --no-build) build=no; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) wanted+=("$1"); shift ;;
  esac
done

triple=${target:-$(rustc -vV | sed -n 's/^host: //p')}
case "$triple" in
  x86_64-*) arch=amd64 ;;
  aarch64-*) arch=arm64 ;;
  *) echo "unsupported target $triple" >&2; exit 2 ;;
esac
case "$triple" in
  *-linux-*) os=linux ;;
  *-apple-*) os=darwin ;;
  *-windows-*) os=windows ;;
  *) echo "unsupported target $triple" >&2; exit 2 ;;
esac

mapfile -t rows < <(list_plugins)
selected=()
for row in "${rows[@]}"; do
  read -r pkg name version link <<<"$row"
  if [ ${#wanted[@]} -eq 0 ] || printf '%s\n' "${wanted[@]}" | grep -qx "$name"; then
    selected+=("$row")
  fi
done
if [ ${#selected[@]} -eq 0 ]; then
  echo "no plugin matches: ${wanted[*]:-(none found under plugins/)}" >&2
  exit 2
fi

[ "$build" = yes ] && build_plugins "$profile" "$target" "${selected[@]}"

mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
archives=()
for row in "${selected[@]}"; do
  read -r pkg name version link <<<"$row"
  bindir=$(plugin_dir "$profile" "$target" "$link")
  if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]]; then
    echo "$pkg version '$version' is not strict SemVer" >&2
    exit 1
  fi
  exe="notation-$name"
  archive="${exe}_${version}_${os}_${arch}.tar.gz"
  rm -rf "${stage:?}/$name" && mkdir -p "$stage/$name"
  install -m 0755 "$bindir/$exe" "$stage/$name/$exe"
  install -m 0644 LICENSE "$stage/$name/LICENSE"
  # Reproducible: fixed owner, order and mtime.
  tar --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' --sort=name \
    -C "$stage/$name" -cf - "$exe" LICENSE | gzip -n -9 >"$out/$archive"
  archives+=("$archive")
  echo "$out/$archive ($(stat -c %s "$bindir/$exe") bytes executable)"
done
(cd "$out" && sha256sum "${archives[@]}" >checksums.txt)
echo "$out/checksums.txt"
