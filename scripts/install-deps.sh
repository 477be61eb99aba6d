#!/usr/bin/env bash
# Installs the system packages the tests, the demo and the backend scripts need, only where
# missing (idempotent, quiet when nothing is missing). The one script that owns system packages:
# the other scripts call it rather than running apt-get themselves. Pinned to the distribution's
# versions; run as root (CI and these machines are root) or via sudo.
set -euo pipefail

need=()
command -v openssl >/dev/null || need+=(openssl)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
command -v pkcs11-tool >/dev/null || need+=(opensc)
command -v python3 >/dev/null || need+=(python3)
command -v curl >/dev/null || need+=(curl ca-certificates)
# The backend scripts make Python venvs (LocalStack, bao, the Key Vault emulator's SDK).
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# The fault-injecting PKCS#11 pass-through of hsm-tests (hsm-tests/fault-pkcs11) is built with
# gcc against p11-kit's pkcs11.h; pkcs11-spy (opensc-pkcs11) counts the calls in front of it.
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[ -e /usr/include/p11-kit-1/p11-kit/pkcs11.h ] || need+=(libp11-kit-dev)
# scripts/bench.sh: bc for sizes; for the time to a plugin's first request, perf (the kernel's
# syscall tracepoints, which do not stop the plugin), and strace where perf cannot record them.
command -v bc >/dev/null || need+=(bc)
command -v perf >/dev/null || need+=(linux-perf)
command -v strace >/dev/null || need+=(strace)
# The virtual PIV cards (scripts/piv-card.sh): pcscd with vsmartcard's virtual reader driver,
# and Yubico's YKCS11 and yubico-piv-tool that the tests drive them with.
command -v pcscd >/dev/null || need+=(pcscd)
[ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || need+=(vsmartcard-vpcd)
ls /usr/lib/*/libykcs11.so.2 >/dev/null 2>&1 || need+=(ykcs11)
command -v yubico-piv-tool >/dev/null || need+=(yubico-piv-tool)
# notation-yubikey talks PC/SC through libpcsclite (the pcsc crate's build finds it with pkg-config;
# the plugin loads it at its first PC/SC call).
command -v pkg-config >/dev/null || need+=(pkg-config)
[ -e /usr/include/PCSC/winscard.h ] || need+=(libpcsclite-dev)
# The static (musl) release builds of the remote plugins: ring's C code needs musl-gcc.
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v unshare >/dev/null || need+=(util-linux)
command -v ip >/dev/null || need+=(iproute2)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing ${need[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
