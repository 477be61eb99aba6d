#!/usr/bin/env bash
# Builds the plugins and installs them where notation looks for them, laid out exactly as
# `notation plugin install` does: ${XDG_CONFIG_HOME:-~/.config}/notation/plugins/<name>/notation-<name>
# (a regular file, mode 0755). The operator commands (`notation-<name> keys`, `trust export`, ...)
# and the conformance checker `notation-plugin-check` go where a shell finds them: links to the
# installed plugins and the checker in --bin-dir (default ~/.local/bin).
#
# Usage: scripts/install.sh [--profile PROFILE] [--bin-dir DIR] [--no-build] [plugin...]
#        (default: every plugin, release profile; --no-build installs the executables already
#        in the target directory, as the tests do)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh
source scripts/plugins.sh

profile=release build=yes wanted=() bin_dir="${NOTATION_PLUGINS_BIN_DIR:-$HOME/.local/bin}"
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --bin-dir) bin_dir=$2; shift 2 ;;
    --no-build) build=no; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) wanted+=("$1"); shift ;;
  esac
done

mapfile -t rows < <(list_plugins)
selected=()
for row in "${rows[@]}"; do
  read -r pkg name version link <<<"$row"
  if [ ${#wanted[@]} -eq 0 ] || printf '%s\n' "${wanted[@]}" | grep -qx "$name"; then
    selected+=("$row")
  fi
done
[ ${#selected[@]} -gt 0 ] || { echo "no plugin matches: ${wanted[*]}" >&2; exit 2; }

[ "$build" = yes ] && build_plugins "$profile" "" "${selected[@]}" -- notation-plugin-check

plugins_dir="${XDG_CONFIG_HOME:-$HOME/.config}/notation/plugins"
for row in "${selected[@]}"; do
  read -r pkg name version link <<<"$row"
  dest="$plugins_dir/$name/notation-$name"
  mkdir -p "$plugins_dir/$name"
  # install(1) replaces a symlink or an old binary with a fresh regular file.
  rm -f "$dest"
  install -m 0755 "$(plugin_dir "$profile" "" "$link")/notation-$name" "$dest"
  echo "installed $name $version -> $dest"
done

# Operator entry points on PATH: links to the installed plugins (notation itself needs the
# regular files above, which stay where they are) and the checker.
mkdir -p "$bin_dir"
for row in "${selected[@]}"; do
  read -r _ name _ <<<"$row"
  ln -sfn "$plugins_dir/$name/notation-$name" "$bin_dir/notation-$name"
done
rm -f "$bin_dir/notation-plugin-check"
install -m 0755 "$(plugin_dir "$profile" "" dynamic)/notation-plugin-check" "$bin_dir/notation-plugin-check"
echo "linked the operator commands and installed notation-plugin-check in $bin_dir"
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) echo "$bin_dir is not on PATH; add it:  export PATH=\"$bin_dir:\$PATH\"" ;;
esac

first=$(echo "${selected[0]}" | awk '{print $2}')
cat <<NEXT

Next:
  notation plugin list
  notation key add <key name> --plugin $first --id <KEY_ID> [--plugin-config key=value ...]
  notation sign --key <key name> <registry>/<repository>@<digest>
Key ids and configuration of each plugin: notation-<name> --help, or plugins/<name>/README.md.
NEXT
