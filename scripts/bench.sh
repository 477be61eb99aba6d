#!/usr/bin/env bash
# Benchmarks of the release plugins, the figures quoted in closing notes and the README:
#   - size of each release binary;
#   - get-plugin-metadata wall time (notation runs it before every signature), RUNS times each;
#   - the whole signing conversation notation makes (get-plugin-metadata + describe-key +
#     generate-signature: three launches), as timed by notation-plugin-check, RUNS times, on
#     SoftHSM2 (pkcs11) and, with --backends, on LocalStack (aws-kms) and OpenBao
#     (hashicorp-vault), started and stopped here if they are not already running.
#
#   scripts/bench.sh [--runs N] [--backends]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh
source scripts/plugins.sh

runs=20
backends=false
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --backends) backends=true; shift ;;
    *) echo "usage: scripts/bench.sh [--runs N] [--backends]" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh
mapfile -t plugins < <(list_plugins | awk '{print $2}')
packages=()
for p in "${plugins[@]}"; do packages+=(-p "notation-$p"); done
echo "building release binaries: ${plugins[*]} and notation-plugin-check" >&2
cargo build --quiet --release "${packages[@]}" -p notation-plugin-check
bin="$CARGO_TARGET_DIR/release"
check="$bin/notation-plugin-check"

# median, mean and max of milliseconds on stdin
stats() {
  sort -n | awk '{v[NR]=$1; s+=$1} END {printf "median %.1f ms, mean %.1f ms, max %.1f ms (n=%d)", v[int((NR+1)/2)], s/NR, v[NR], NR}'
}

echo
echo "== release binaries ($(uname -m), $(rustc --version | cut -d' ' -f2))"
for p in "${plugins[@]}"; do
  exe="$bin/notation-$p"
  size=$(stat -c %s "$exe")
  meta=$(for _ in $(seq "$runs"); do
    start=$(date +%s%N)
    echo '{}' | "$exe" get-plugin-metadata >/dev/null
    end=$(date +%s%N)
    echo "scale=3; ($end - $start) / 1000000" | bc
  done | stats)
  printf '%-28s %5.2f MB   get-plugin-metadata: %s\n' "notation-$p" "$(echo "scale=2; $size/1000000" | bc)" "$meta"
done

# Runs the checker RUNS times; prints the median of the JWS signing conversation and of each step.
conversation() {
  local name="$1" plugin="$2" key="$3"
  shift 3
  local out dir="$work/runs-${name//[^A-Za-z0-9]/_}"
  mkdir -p "$dir"
  for i in $(seq "$runs"); do
    "$check" "$plugin" --key-id "$key" "$@" --envelope jws --json >"$dir/$i.json" || {
      echo "the conformance check failed for $name:" >&2
      cat "$dir/$i.json" >&2
      exit 1
    }
  done
  out=$(python3 - "$dir"/*.json <<'PY'
import json, sys, statistics
docs = [json.load(open(f)) for f in sys.argv[1:]]
med = statistics.median
conv = [d["signConversations"][0]["wallTimeMs"] for d in docs]
steps = {}
for d in docs:
    for inv in d["invocations"]:
        if inv["command"] in ("describe-key", "generate-signature") and inv["exitCode"] == 0:
            steps.setdefault(inv["command"], []).append(inv["wallTimeMs"])
print("conversation median %.1f ms; describe-key %.1f ms; generate-signature %.1f ms (n=%d)" % (
    med(conv), med(steps["describe-key"]), med(steps["generate-signature"]), len(docs)))
PY
  )
  printf '%-34s %s\n' "$name" "$out"
}

echo
echo "== signing conversation (3 launches, JWS) as notation makes it"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
softhsm/create-token.sh "$work/hsm" bench >/dev/null
export SOFTHSM2_CONF="$work/hsm/softhsm2.conf"
for spec in EC-256 EC-384 RSA-3072; do
  uri="$("$bin/notation-pkcs11" generate-key --spec "$spec" \
    --key-id "pkcs11:token=bench;object=k-$spec?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$work/hsm/user.pin" 2>/dev/null)"
  "$bin/notation-pkcs11" certificate self-signed --key-id "$uri" --subject "CN=bench $spec" --out "$work/$spec.pem"
  "$bin/notation-pkcs11" import-certificate --key-id "$uri" --chain "$work/$spec.pem" 2>/dev/null
  conversation "pkcs11 (SoftHSM2) $spec" "$bin/notation-pkcs11" "$uri"
done

if $backends; then
  stop=()
  cleanup() {
    for b in "${stop[@]}"; do "scripts/$b.sh" stop >/dev/null 2>&1 || true; done
    rm -rf "$work"
  }
  trap cleanup EXIT
  if [ -x scripts/localstack.sh ]; then
    scripts/localstack.sh status >/dev/null 2>&1 || { scripts/localstack.sh start >&2; stop+=(localstack); }
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
      AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_EC2_METADATA_DISABLED=true
    key="$("$bin/notation-aws-kms" create-key --spec ECC_NIST_P384)"
    "$bin/notation-aws-kms" certificate self-signed --key-id "$key" --subject "CN=bench kms" --out "$work/kms.pem"
    conversation "aws-kms (LocalStack) EC-384" "$bin/notation-aws-kms" "$key" --plugin-config "certificate_chain=$work/kms.pem"
  fi
  if [ -x scripts/openbao.sh ]; then
    scripts/openbao.sh status >/dev/null 2>&1 || { scripts/openbao.sh start >&2; stop+=(openbao); }
    eval "$(scripts/openbao.sh env)"
    bao="${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins/openbao-venv/bin/bao"
    "$bao" secrets enable -path=bench-transit transit >/dev/null 2>&1 || true
    "$bao" write -f bench-transit/keys/bench type=ecdsa-p384 >/dev/null
    "$bin/notation-hashicorp-vault" certificate self-signed --key-id bench \
      --plugin-config transit_mount=bench-transit --subject "CN=bench vault" --out "$work/vault.pem" --force
    conversation "hashicorp-vault (OpenBao) EC-384" "$bin/notation-hashicorp-vault" bench \
      --plugin-config transit_mount=bench-transit --plugin-config "certificate_chain=$work/vault.pem"
  fi
fi
