#!/usr/bin/env bash
# Creates an isolated SoftHSM2 token in DIR, never touching the system token store.
#
#   softhsm/create-token.sh DIR [LABEL]
#
# Writes:
#   DIR/softhsm2.conf   SoftHSM configuration (tokens under DIR/tokens); export SOFTHSM2_CONF to it
#   DIR/user.pin        the token's user PIN (random, mode 0600): use pin-source=file:DIR/user.pin
#   DIR/so.pin          the security-officer PIN (random, mode 0600)
# and prints the environment and key-URI prefix to use. Running it again with another LABEL adds
# a second token to the same DIR (same PINs).
set -euo pipefail

dir="${1:?usage: softhsm/create-token.sh DIR [LABEL]}"
label="${2:-notation}"
module="${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"

command -v softhsm2-util >/dev/null || {
  echo "softhsm2-util not found: run scripts/install-deps.sh (installs softhsm2)" >&2
  exit 1
}
mkdir -p "$dir/tokens"
dir="$(cd "$dir" && pwd)"
umask 077
if [ ! -f "$dir/softhsm2.conf" ]; then
  cat >"$dir/softhsm2.conf" <<CONF
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
fi
[ -f "$dir/user.pin" ] || openssl rand -hex 8 | tr -d '\n' >"$dir/user.pin"
[ -f "$dir/so.pin" ] || openssl rand -hex 8 | tr -d '\n' >"$dir/so.pin"
chmod 600 "$dir/user.pin" "$dir/so.pin"

export SOFTHSM2_CONF="$dir/softhsm2.conf"
softhsm2-util --init-token --free --label "$label" \
  --pin "$(cat "$dir/user.pin")" --so-pin "$(cat "$dir/so.pin")" >/dev/null

cat <<INFO
created SoftHSM token '$label' in $dir
  export SOFTHSM2_CONF=$dir/softhsm2.conf
  key URI prefix: pkcs11:token=$label;object=<key label>?module-path=$module&pin-source=file:$dir/user.pin
INFO
