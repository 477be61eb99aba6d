#!/usr/bin/env bash
# Runs every test of the suite on a fresh machine: installs what the tests need, starts the
# local backends on 127.0.0.1, runs the whole workspace's tests, and stops the backends again
# (also on failure or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh

scripts/install-deps.sh

started=()
stop_backends() {
  for b in "${started[@]}"; do
    "scripts/$b.sh" stop || true
  done
}
trap stop_backends EXIT
# Backends that have a start/stop script (added by the backend issues) are started here, and
# stopped at the end: only those this run started (one already running was started by someone
# else, who may still be using it).
for b in localstack openbao keyvault-emulator gcpkms-emulator piv-card; do
  if [ -x "scripts/$b.sh" ]; then
    running=false
    "scripts/$b.sh" status >/dev/null 2>&1 && running=true
    "scripts/$b.sh" start
    $running || started+=("$b")
  fi
done

# The static (musl) linking that release builds of the remote plugins get, built here once for
# one of them in the dev profile (same linking, quicker) for hsm-tests/tests/packaging.rs,
# which runs it against OpenBao.
source scripts/plugins.sh
musl=$(host_triple)
musl=${musl%-gnu}-musl
if [[ "$musl" == *-linux-musl ]] && musl_ready "$musl"; then
  cargo build --quiet --target "$musl" -p notation-hashicorp-vault
fi

# `scripts/test.sh -p hsm-tests --test vault` runs part of the suite the same way.
scope=(--workspace)
for arg in "$@"; do
  case "$arg" in -p | --package | -p* | --package=*) scope=() ;; esac
done
cargo test "${scope[@]}" "$@"
