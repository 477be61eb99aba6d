#!/usr/bin/env bash
# Mutation testing (cargo-mutants, every feature on) of the code that decides whether a
# signature is good: every file of the shared crate that ships in a plugin (its chain,
# signature, pipeline, key-spec, runner, config and public-key rules, bounded reads, secrets,
# TLS trust, retries and the certificate commands), and each backend's signing and key-id code.
# Every mutant must be caught by a test, or excluded in .cargo/mutants.toml with the reason it
# cannot matter.
#
#   scripts/mutants.sh                 the full run: --protocol, --backends, then --live
#   scripts/mutants.sh --ci            a bounded subset (signature.rs diagnosis), a few minutes
#   scripts/mutants.sh --protocol      plugin-protocol's rules only
#   scripts/mutants.sh --backends      the backends' signing and key-id code only
#   scripts/mutants.sh --live          the backend mutants only hsm-tests can catch, against the
#                                      local backends (SoftHSM2, the Key Vault emulator)
#   scripts/mutants.sh --list ...      the mutants a run would test, without running them
#   scripts/mutants.sh FILE...         just these files
#   scripts/mutants.sh -- ARGS...      extra cargo-mutants arguments (e.g. -- --iterate)
#
# It runs niced, in its own target directory beside the shared one (MUTANTS_TARGET_DIR), so it
# never holds the lock of the builds other people wait on. Results: $MUTANTS_OUT/<set>/mutants.out/
# per set (caught.txt, missed.txt, unviable.txt, timeout.txt). Exit status is cargo-mutants': 0 when
# every viable mutant was caught, 2 when one was missed, 3 on a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh

CARGO_MUTANTS_VERSION=27.1.0
export CARGO_TARGET_DIR="${MUTANTS_TARGET_DIR:-$(dirname "$CARGO_TARGET_DIR")/mutants-target}"
out="${MUTANTS_OUT:-$CARGO_TARGET_DIR}"
mkdir -p "$CARGO_TARGET_DIR" "$out"
# Each mutant changes one crate: the tests build only the plugin binaries they run, not the
# whole workspace (see plugin_protocol::client::cargo_binary).
export NOTATION_PLUGINS_TEST_BUILD=single

if [ "$(cargo mutants --version 2>/dev/null)" != "cargo-mutants $CARGO_MUTANTS_VERSION" ]; then
  cargo install cargo-mutants --locked --version "$CARGO_MUTANTS_VERSION"
fi

# Every file of plugin-protocol that ships in a plugin: the rules above, and the code every plugin
# bounds its reads (bounded) and keeps secrets with (secret), the subject forms of certificate
# commands and trust policies (dn, identity), trust export (trust), raw-RSA PSS (pss), key-id
# parsing (key_reference), error codes (error), the deadline and blocking calls (deadline,
# blocking), remote failures and retries (remote), TLS trust stores (tls), the certificate and
# operator commands (certificates, command_key, operator), the backend trait's defaults
# (backend), the wire contract (contract) and plugin metadata (plugin_info). Only the test
# support is left out (client, softkey, testca, slips), and lib.rs.
protocol=()
for f in plugin-protocol/src/*.rs; do
  case "$(basename "$f" .rs)" in
    client | softkey | testca | slips | lib) ;;
    *) protocol+=("$f") ;;
  esac
done
# Each backend's signing and key-id code. Only the functions a unit test can reach are mutated;
# the rest talks to a token or a service and is tested by hsm-tests against SoftHSM2,
# LocalStack, OpenBao and the Key Vault and Cloud KMS emulators, which a mutants run does not
# start.
backends=(
  plugins/pkcs11/src/key.rs plugins/pkcs11/src/uri.rs
  plugins/aws-kms/src/backend.rs plugins/aws-kms/src/keyref.rs
  plugins/hashicorp-vault/src/transit.rs plugins/hashicorp-vault/src/keyref.rs
  plugins/azure-keyvault/src/backend.rs plugins/azure-keyvault/src/keyref.rs
  plugins/gcp-kms/src/backend.rs plugins/gcp-kms/src/keyref.rs
  plugins/yubikey/src/slot.rs plugins/yubikey/src/metadata.rs plugins/yubikey/src/attestation.rs
  plugins/yubikey/src/pin.rs
)
pure='pss_params|signer|unwrap_ec_point|hex|sign_request|parse_signature|check_mount|TransitKey::key_spec'
pure+='|hash_name|notary_spec|signing_algorithm|jwk_public_key|version_of'
pure+='|state_problem|refuse_state|refuse_algorithm|crc32c'
pure+='|parse|tlv|facts|form_factor|refused|malformed'
# cargo-mutants 27.1.0 applies no name filter (-F, -E, exclude_re) to struct-field deletions
# (visit.rs pushes them unfiltered), so those in backend-calling functions (key versions,
# KeyObject::uri) are in this set anyway and show as missed here: only hsm-tests can catch them,
# which the --live set below does.
backend_args=(-F "keyref\.rs|uri\.rs|slot\.rs|($pure)( ->|\$)|in ($pure)\$")
# Those struct-field deletions (the key, certificate and secret versions Key Vault is asked for,
# the label and id of the URI `notation-pkcs11 keys` prints) are caught here instead, by
# hsm-tests against SoftHSM2 and the Key Vault emulator (which the tests start themselves):
# azure_keyvault.rs a_pinned_certificate_version_signs_with_its_own_key_after_renewal and
# a_pinned_key_version_is_described_as_that_version, and pkcs11.rs
# keys_fails_when_it_cannot_log_in_and_tokens_names_its_module_option.
live=(plugins/azure-keyvault/src/backend.rs plugins/pkcs11/src/key.rs)
# cargo-mutants 27.1.0 runs its baseline with the mutated packages' tests, not --test-package's
# (lab.rs run_baseline), which name no azure_keyvault or pkcs11 test: the baseline is skipped
# and the timeout set instead (these tests pass in scripts/test.sh).
live_args=(-F 'delete field' --test-package hsm-tests --baseline=skip --timeout=300
  --cargo-test-arg=--test=azure_keyvault --cargo-test-arg=--test=pkcs11)
# The CI subset: the RSA-PSS salt and ECDSA encoding diagnosis (signature.rs), tested by the
# one test file that checks them directly; about 30 mutants, a few minutes once the mutants
# target directory is warm (the first run also builds the dependencies there).
ci=(plugin-protocol/src/signature.rs)
ci_args=(-F 'verify_rsa_pss|pss_verify|check_fixed_len' --cargo-test-arg=--test=keys_and_signatures)

files=() args=() sets=()
mode=run
while [ $# -gt 0 ]; do
  case "$1" in
    --ci) sets+=(ci) ;;
    --protocol) sets+=(protocol) ;;
    --backends) sets+=(backends) ;;
    --live) sets+=(live) ;;
    --list) mode=list ;;
    --) shift; args+=("$@"); break ;;
    -*) echo "usage: scripts/mutants.sh [--ci|--protocol|--backends|--live] [--list] [FILE...] [-- CARGO-MUTANTS-ARGS...]" >&2; exit 2 ;;
    *) files+=("$1") ;;
  esac
  shift
done
[ ${#files[@]} -gt 0 ] && sets+=(files)
[ ${#sets[@]} -gt 0 ] || sets=(protocol backends live)

# Every feature on (--all-features below): plugin-protocol's `remote` code (the async retry
# loop, the host lookup) and its tests are compiled only with it, and a package's own tests are
# built with only the features its dev-dependencies name; with the rest off, a mutant there was
# left untested, or "caught" because the test plugins, built with --all-features, failed to
# compile.
status=0
for set in "${sets[@]}"; do
  case "$set" in
    protocol) set_files=("${protocol[@]}") set_args=() ;;
    backends) set_files=("${backends[@]}") set_args=("${backend_args[@]}") ;;
    ci) set_files=("${ci[@]}") set_args=("${ci_args[@]}") ;;
    live) set_files=("${live[@]}") set_args=("${live_args[@]}") ;;
    files) set_files=("${files[@]}") set_args=() ;;
  esac
  file_args=()
  for f in "${set_files[@]}"; do file_args+=(--file "$f"); done
  if [ "$mode" = list ]; then
    cargo mutants --list --all-features "${file_args[@]}" "${set_args[@]}" "${args[@]}"
    continue
  fi
  echo "cargo-mutants ($set): results in $out/$set/mutants.out" >&2
  nice -n 19 cargo mutants --all-features "${file_args[@]}" "${set_args[@]}" --output "$out/$set" "${args[@]}" || status=$?
done
exit "$status"
