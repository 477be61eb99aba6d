#!/usr/bin/env bash
# Mutation testing (cargo-mutants) of the code that decides whether a signature is good: the
# shared crate's chain, signature, pipeline, key-spec, runner, config and public-key rules, and
# each backend's signing and key-id code. Every mutant must be caught by a test, or excluded in
# .cargo/mutants.toml with the reason it cannot matter.
#
#   scripts/mutants.sh                 the full run (about an hour on two cores)
#   scripts/mutants.sh --ci            a bounded subset (signature.rs diagnosis), a few minutes
#   scripts/mutants.sh --list          the mutants of the full run, without running them
#   scripts/mutants.sh FILE...         just these files
#   scripts/mutants.sh -- ARGS...      extra cargo-mutants arguments (e.g. -- --iterate)
#
# It runs niced, in its own target directory beside the shared one (MUTANTS_TARGET_DIR), so it
# never holds the lock of the builds other people wait on. Results: $MUTANTS_OUT/mutants.out/
# (caught.txt, missed.txt, unviable.txt, timeout.txt). Exit status is cargo-mutants': 0 when
# every viable mutant was caught, 2 when one was missed, 3 on a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh

CARGO_MUTANTS_VERSION=27.1.0
export CARGO_TARGET_DIR="${MUTANTS_TARGET_DIR:-$(dirname "$CARGO_TARGET_DIR")/mutants-target}"
out="${MUTANTS_OUT:-$CARGO_TARGET_DIR}"
mkdir -p "$CARGO_TARGET_DIR" "$out"

if [ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $CARGO_MUTANTS_VERSION" ]; then
  cargo install cargo-mutants --locked --version "$CARGO_MUTANTS_VERSION"
fi

protocol=(chain signature pipeline keyspec runner config public_key)
full=("${protocol[@]/#/plugin-protocol/src/}")
full=("${full[@]/%/.rs}")
# Signing and key-id code of each backend (their unit tests; hsm-tests needs live backends).
full+=(
  plugins/pkcs11/src/key.rs plugins/pkcs11/src/uri.rs
  plugins/aws-kms/src/keyref.rs
  plugins/hashicorp-vault/src/keyref.rs plugins/hashicorp-vault/src/transit.rs
  plugins/azure-keyvault/src/keyref.rs
)
# The CI subset: the RSA-PSS salt and ECDSA encoding diagnosis (signature.rs), tested by the
# one test file that checks them directly; about 30 mutants, a few minutes once the mutants
# target directory is warm (the first run also builds the dependencies there).
ci=(plugin-protocol/src/signature.rs)
ci_args=(-F 'verify_rsa_pss|pss_verify|check_fixed_len' --cargo-test-arg=--test=keys_and_signatures)

files=() args=()
mode=run
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) files=("${ci[@]}"); args+=("${ci_args[@]}") ;;
    --list) mode=list ;;
    --) shift; args+=("$@"); break ;;
    -*) echo "usage: scripts/mutants.sh [--ci|--list] [FILE...] [-- CARGO-MUTANTS-ARGS...]" >&2; exit 2 ;;
    *) files+=("$1") ;;
  esac
  shift
done
[ ${#files[@]} -gt 0 ] || files=("${full[@]}")

file_args=()
for f in "${files[@]}"; do file_args+=(--file "$f"); done

if [ "$mode" = list ]; then
  exec cargo mutants --list "${file_args[@]}" "${args[@]}"
fi
echo "cargo-mutants over ${#files[@]} file(s), target $CARGO_TARGET_DIR, results in $out/mutants.out" >&2
exec nice -n 19 cargo mutants "${file_args[@]}" --output "$out" "${args[@]}"
