#!/usr/bin/env bash
# Builds the plugins and installs them where notation looks for them, laid out exactly as
# `notation plugin install` does: ${XDG_CONFIG_HOME:-~/.config}/notation/plugins/<name>/notation-<name>
# (a regular file, mode 0755).
#
# Usage: scripts/install.sh [--profile PROFILE] [plugin...]   (default: every plugin, release)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh
source scripts/plugins.sh

profile=release wanted=()
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) wanted+=("$1"); shift ;;
  esac
done

mapfile -t rows < <(list_plugins)
selected=()
for row in "${rows[@]}"; do
  read -r pkg name version <<<"$row"
  if [ ${#wanted[@]} -eq 0 ] || printf '%s\n' "${wanted[@]}" | grep -qx "$name"; then
    selected+=("$row")
  fi
done
[ ${#selected[@]} -gt 0 ] || { echo "no plugin matches: ${wanted[*]}" >&2; exit 2; }

args=(build --profile "$profile")
for row in "${selected[@]}"; do read -r pkg _ _ <<<"$row"; args+=(-p "$pkg"); done
cargo "${args[@]}"

profile_dir=$profile
[ "$profile" = dev ] && profile_dir=debug
plugins_dir="${XDG_CONFIG_HOME:-$HOME/.config}/notation/plugins"
for row in "${selected[@]}"; do
  read -r pkg name version <<<"$row"
  dest="$plugins_dir/$name/notation-$name"
  mkdir -p "$plugins_dir/$name"
  # install(1) replaces a symlink or an old binary with a fresh regular file.
  rm -f "$dest"
  install -m 0755 "$CARGO_TARGET_DIR/$profile_dir/notation-$name" "$dest"
  echo "installed $name $version -> $dest"
done

first=$(echo "${selected[0]}" | awk '{print $2}')
cat <<NEXT

Next:
  notation plugin list
  notation key add <key name> --plugin $first --id <KEY_ID> [--plugin-config key=value ...]
  notation sign --key <key name> <registry>/<repository>@<digest>
Key ids and configuration of each plugin: notation-<name> --help, or plugins/<name>/README.md.
NEXT
