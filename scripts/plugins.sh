# Sourced by package.sh, install.sh, bench.sh and test.sh: discovers the plugin crates (every
# plugins/*/ whose package builds a `notation-<name>` binary), so plugins added later need no
# script edits, and builds them.
#
# list_plugins prints "<package> <plugin name> <version> <link>" per plugin. <link> is "static"
# for a plugin whose Cargo.toml says
#   [package.metadata.notation-plugins]
#   link = "static"
# and "dynamic" otherwise.
list_plugins() {
  cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys, os
meta = json.load(sys.stdin)
root = meta["workspace_root"]
for p in sorted(meta["packages"], key=lambda p: p["name"]):
    rel = os.path.relpath(os.path.dirname(p["manifest_path"]), root)
    if not rel.startswith("plugins" + os.sep):
        continue
    link = ((p.get("metadata") or {}).get("notation-plugins") or {}).get("link", "dynamic")
    bins = [t["name"] for t in p["targets"] if "bin" in t["kind"] and t["name"].startswith("notation-")]
    for b in bins:
        print(p["name"], b[len("notation-"):], p["version"], link)
'
}

# Release builds of "static" plugins for Linux are linked statically against musl
# (<arch>-unknown-linux-musl): notation starts a plugin three times per signature, and a static
# binary skips the dynamic loader at every start (about a third of get-plugin-metadata), runs on
# any Linux whatever its glibc, and resolves names with musl's own resolver (/etc/hosts,
# /etc/resolv.conf; no NSS modules, which a static glibc would dlopen and can crash on). The
# PKCS#11 and YubiKey plugins stay dynamic: they load the system's PKCS#11 module or
# libpcsclite. Without the musl target (rustup) and musl-gcc, or with NOTATION_PLUGINS_NO_MUSL
# set, a static plugin is built dynamic, with a warning.

host_triple() { rustc -vV | sed -n 's/^host: //p'; }

# plugin_triple PROFILE TARGET LINK: the target triple such a build uses (empty: the host's,
# unnamed).
plugin_triple() {
  local triple=${2:-$(host_triple)}
  if [ "$1" = release ] && [ "$3" = static ] && [[ "$triple" == *-unknown-linux-gnu ]] \
    && musl_ready "${triple%-gnu}-musl"; then
    echo "${triple%-gnu}-musl"
  else
    echo "$2"
  fi
}

# musl_ready TRIPLE: the musl standard library and a musl C compiler (ring's C code) are there,
# installed when they can be (rustup; musl-tools by install-deps.sh); a warning otherwise.
musl_ready() {
  if [ -n "${NOTATION_PLUGINS_NO_MUSL:-}" ]; then
    echo "warning: NOTATION_PLUGINS_NO_MUSL is set: the static plugins are built dynamic" >&2
    return 1
  fi
  if ! rustc --print sysroot >/dev/null 2>&1 \
    || [ ! -d "$(rustc --print sysroot)/lib/rustlib/$1" ]; then
    command -v rustup >/dev/null && rustup target add "$1" >&2 2>/dev/null
  fi
  command -v musl-gcc >/dev/null || scripts/install-deps.sh >&2 || true
  if [ -d "$(rustc --print sysroot)/lib/rustlib/$1" ] && command -v musl-gcc >/dev/null; then
    return 0
  fi
  echo "warning: no $1 target or musl-gcc: the static plugins are built dynamic" >&2
  return 1
}

# plugin_dir PROFILE TARGET LINK: where the executable of such a build is.
plugin_dir() {
  local profile_dir=$1 triple
  [ "$1" = dev ] && profile_dir=debug
  triple=$(plugin_triple "$1" "$2" "$3")
  echo "$CARGO_TARGET_DIR/${triple:+$triple/}$profile_dir"
}

# build_plugins PROFILE TARGET ROW... [-- EXTRA_PACKAGE...]: builds the plugins of the
# list_plugins rows (and the extra packages, for TARGET), one cargo run per target triple.
build_plugins() {
  local profile=$1 target=$2 pkg name version link triple
  shift 2
  declare -A packages=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    read -r pkg name version link <<<"$1"
    triple=$(plugin_triple "$profile" "$target" "$link")
    packages[${triple:-host}]+=" -p $pkg"
    shift
  done
  [ "${1:-}" = -- ] && shift
  for pkg in "$@"; do packages[${target:-host}]+=" -p $pkg"; done
  for triple in "${!packages[@]}"; do
    local args=(build --profile "$profile")
    [ "$triple" = host ] || args+=(--target "$triple")
    # shellcheck disable=SC2086 # the package list splits into words
    cargo "${args[@]}" ${packages[$triple]}
  done
}
