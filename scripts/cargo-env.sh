# Sourced by the scripts: one cargo target directory outside the clone, reused across clean
# clones on the same machine (CI builds in a fresh clone each time), unless the caller set one.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"
