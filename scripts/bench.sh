#!/usr/bin/env bash
# Benchmarks of the release plugins, the figures quoted in closing notes and the README:
#   - the size of each release binary, and get-plugin-metadata (notation runs it before every
#     signature) against starting a trivial process (/bin/true), as medians of paired runs (ten
#     times --runs of them: a start takes a millisecond, and a shared machine moves single
#     figures by a tenth of that);
#   - per plugin, describe-key and generate-signature (EC-256, chain from a file): wall time,
#     CPU time, backend requests, the time from exec to the first request (read from perf's
#     syscall tracepoints, as root; else from strace, whose stops inflate it), and the ratio to
#     the floor, one bare request of the same API made by curl against the same local backend
#     (PKCS#11: pkcs11-tool with login), as medians of paired runs (scripts/bench_backends.py). SoftHSM2 always; with --backends also OpenBao,
#     LocalStack, the Key Vault and Cloud KMS emulators, started here (and stopped again) if not
#     running.
#
#   scripts/bench.sh [--runs N] [--backends] [--bin-dir DIR] [--before DIR]
#
# --bin-dir benchmarks the notation-* binaries in DIR (e.g. an earlier release) instead of
# building them. --before DIR runs the binaries in DIR interleaved with these (each run of one
# followed by a run of the other and of the floor), and prints their figures beside them:
# before-and-after figures from separate invocations differ by more than most changes do.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cargo-env.sh
source scripts/plugins.sh

runs=20
backends=false
bin="" before=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --backends) backends=true; shift ;;
    --bin-dir) bin="$(cd "$2" && pwd)"; shift 2 ;;
    --before) before="$(cd "$2" && pwd)"; shift 2 ;;
    *) echo "usage: scripts/bench.sh [--runs N] [--backends] [--bin-dir DIR] [--before DIR]" >&2; exit 2 ;;
  esac
done

# The system's default trust store, as on a fresh Debian or Ubuntu machine: an SSL_CERT_DIR or
# SSL_CERT_FILE set in the calling shell makes every HTTPS plugin read what it names (a whole
# certificate directory costs milliseconds), which is the user's choice, not the plugin's cost.
unset SSL_CERT_DIR SSL_CERT_FILE

stop=()
copies=()
cleanup() {
  for b in "${stop[@]}"; do "scripts/$b.sh" stop >/dev/null 2>&1 || true; done
  for d in "${copies[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

# A fresh copy of each notation-* binary in $1, in a folder of its own ($copy): the binaries
# run as `notation plugin install` leaves them, a file written in one go. (How a file was
# written changes how fast it starts: the linker's output starts about 0.1 ms slower than a copy
# of it, a difference as large as many a change measured here.)
installed_copy() {
  copy=$(mktemp -d)
  copies+=("$copy")
  for exe in "$1"/notation-*; do
    if [ -x "$exe" ]; then cp -L "$exe" "$copy/"; fi
  done
}

scripts/install-deps.sh
mapfile -t rows < <(list_plugins)
mapfile -t plugins < <(printf '%s\n' "${rows[@]}" | awk '{print $2}')
if [ -z "$bin" ]; then
  echo "building release binaries: ${plugins[*]}" >&2
  build_plugins release "" "${rows[@]}" >&2
  # One folder with every plugin, the static builds' included.
  bin=$(mktemp -d)
  copies+=("$bin")
  for row in "${rows[@]}"; do
    read -r _ name _ link <<<"$row"
    ln -s "$(plugin_dir release "" "$link")/notation-$name" "$bin/notation-$name"
  done
fi
installed_copy "$bin"
bin=$copy
if [ -n "$before" ]; then
  installed_copy "$before"
  before=$copy
fi

# Median milliseconds of `runs` paired runs of a plugin's get-plugin-metadata and /bin/true (and
# of the plugin in --before, interleaved, when given).
metadata_vs_true() {
  python3 - "$((runs * 10))" "$@" <<'PY'
import statistics, subprocess, sys, time
runs, exes = int(sys.argv[1]), sys.argv[2:]
def ms(cmd, stdin=None):
    start = time.perf_counter()
    subprocess.run(cmd, input=stdin, capture_output=True, check=True)
    return (time.perf_counter() - start) * 1000
meta, true = [[] for _ in exes], []
for i in range(runs + 1):
    # The order alternates, so that neither binary always runs first.
    for times, exe in list(zip(meta, exes))[:: 1 if i % 2 else -1]:
        times.append(ms([exe, "get-plugin-metadata"], b"{}"))
    true.append(ms(["/bin/true"]))
meta, true = [statistics.median(t[1:]) for t in meta], statistics.median(true[1:])
line = f"get-plugin-metadata {meta[0]:.2f} ms, /bin/true {true:.2f} ms: {meta[0] / true:.2f}x"
if len(meta) > 1:
    line += f" (before: {meta[1]:.2f} ms, {meta[1] / true:.2f}x)"
print(line)
PY
}

echo
echo "== release binaries ($(uname -m), $(rustc --version | cut -d' ' -f2)), get-plugin-metadata as medians of $((runs * 10)) paired runs, default trust store"
for p in "${plugins[@]}"; do
  exe="$bin/notation-$p"
  [ -x "$exe" ] || continue
  size=$(stat -L -c %s "$exe")
  linked=dynamic
  readelf -d "$(readlink -f "$exe")" 2>/dev/null | grep -q '(NEEDED)' || linked=static
  others=()
  if [ -n "$before" ] && [ -x "$before/notation-$p" ]; then
    others=("$before/notation-$p")
    size="$size $(stat -L -c %s "$before/notation-$p")"
  fi
  read -r size before_size <<<"$size"
  printf '%-26s %5.2f MB %-8s %s%s\n' "notation-$p" "$(echo "scale=2; $size/1000000" | bc)" "$linked" \
    "$(metadata_vs_true "$exe" "${others[@]}")" "${before_size:+; before $(echo "scale=2; $before_size/1000000" | bc) MB}"
done

selected=pkcs11
if $backends; then
  for b in openbao localstack keyvault-emulator gcpkms-emulator; do
    scripts/$b.sh status >/dev/null 2>&1 || { scripts/$b.sh start >&2; stop+=("$b"); }
  done
  eval "$(scripts/openbao.sh env)"
  eval "$(scripts/keyvault-emulator.sh env)"
  # Its CA bundle is for the Key Vault runs alone (bench_backends.py sets it for them).
  export KV_EMULATOR_TRUST=$SSL_CERT_FILE
  unset SSL_CERT_FILE
  eval "$(scripts/gcpkms-emulator.sh env)"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_EC2_METADATA_DISABLED=true
  selected=pkcs11,hashicorp-vault,aws-kms,azure-keyvault
  [ -x "$bin/notation-gcp-kms" ] && selected+=,gcp-kms
fi
echo
echo "== describe-key and generate-signature (EC-256, chain from a file), medians of $runs paired runs"
python3 scripts/bench_backends.py --bin "$bin" --runs "$runs" --backends "$selected" \
  ${before:+--before "$before"}
