#!/usr/bin/env bash
# Long run of the property-based fuzz target (plugin-protocol/tests/fuzz_requests.rs): request
# parsing in process and the runner boundary through the softkey plugin binary. CI runs the
# same target with its small defaults as part of the tests.
#
#   scripts/fuzz.sh [CASES]     CASES in-process cases (default 200000), a tenth of them through
#                               the binary
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh
cases="${1:-200000}"
FUZZ_CASES="$cases" FUZZ_PROCESS_CASES="$((cases / 10))" \
  cargo test -p plugin-protocol --test fuzz_requests -- --nocapture --test-threads=1
