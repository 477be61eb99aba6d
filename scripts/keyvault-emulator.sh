#!/usr/bin/env bash
# Starts or stops the local Azure Key Vault emulator (hsm-tests/keyvault-emulator/emulator.py)
# for the azure-keyvault plugin tests.
#
#   scripts/keyvault-emulator.sh start    make the venv (pinned cryptography and Microsoft's
#                                         Python SDK, for the conformance test), a test CA and
#                                         the TLS certificate, the /etc/hosts entries, then start
#                                         the emulator and wait until it answers; idempotent
#   scripts/keyvault-emulator.sh stop     stop it (pid file) and remove the /etc/hosts entries
#   scripts/keyvault-emulator.sh status   exit 0 if it is running and answering
#   scripts/keyvault-emulator.sh env      print the `export ...` lines a shell needs to use it
#
# The vault is https://local.vault.azure.net and the Entra authority https://login.kv-emulator.test,
# both 127.0.0.1:443 through /etc/hosts (root is needed to edit it and to bind port 443: CI runs
# as root). The vault keeps its real-looking name because the Azure SDKs (and the plugin) check
# that the vault host ends with the challenge's resource domain .vault.azure.net. Port 443 and not
# another one because the Python SDK compares the host *with its port* against that domain
# (local.vault.azure.net:8443 does not end with .vault.azure.net), and key ids then look exactly
# like real ones: https://local.vault.azure.net/keys/<name>. The plugin and the Rust SDK accept a
# port (KV_EMULATOR_PORT=8443 works for them, not for the Python conformance test). TLS is trusted
# through SSL_CERT_FILE (rustls honours it; the Python SDK through REQUESTS_CA_BUNDLE) and the
# authority through AZURE_AUTHORITY_HOST.
# An admin port (plain HTTP, 127.0.0.1:8480) serves the vault API without authentication for test
# set-up and injects faults. Everything lives under ${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins/:
# the venv in keyvault-venv/, CA, certificate, pid, log and state in keyvault-emulator/.
# The state file (keyvault-emulator/state.env) holds what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins"
VENV="$CACHE/keyvault-venv"
DIR="$CACHE/keyvault-emulator"
PORT="${KV_EMULATOR_PORT:-443}"
ADMIN_PORT="${KV_EMULATOR_ADMIN_PORT:-8480}"
VAULT_HOST="local.vault.azure.net"
LOGIN_HOST="login.kv-emulator.test"
TENANT="72f988bf-0000-4000-8000-00000000abcd"
HOSTS_MARK="# notation-plugins keyvault-emulator"
if [ "$PORT" = 443 ]; then
  VAULT_URL="https://$VAULT_HOST"
  AUTHORITY="https://$LOGIN_HOST"
else
  VAULT_URL="https://$VAULT_HOST:$PORT"
  AUTHORITY="https://$LOGIN_HOST:$PORT"
fi
PIDFILE="$DIR/emulator.pid"
LOG="$DIR/emulator.log"
STATE="$DIR/state.env"
EMULATOR="$PWD/hsm-tests/keyvault-emulator/emulator.py"
# Pinned: versions verified to install and to pass hsm-tests/keyvault-emulator/conformance.py.
PACKAGES=(cryptography==46.0.3 azure-identity==1.25.1 azure-keyvault-keys==4.11.0
  azure-keyvault-certificates==4.10.0 azure-keyvault-secrets==4.10.0)

log() { echo "keyvault-emulator.sh: $*" >&2; }
source scripts/emulator-process.sh

make_certificates() {
  [ -s "$DIR/server.pem" ] && [ -s "$DIR/ca.pem" ] && return
  log "making the test CA and the TLS certificate for $VAULT_HOST and $LOGIN_HOST"
  mkdir -p "$DIR"
  (
    cd "$DIR"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=notation-plugins keyvault-emulator test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=$VAULT_HOST" -keyout server.key -out server.csr 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=DNS:$VAULT_HOST,DNS:*.vault.azure.net,DNS:$LOGIN_HOST,IP:127.0.0.1" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
      -extfile server.ext -out server.pem 2>/dev/null
    rm -f server.csr server.ext
    # The bundle clients trust: the system roots plus the test CA.
    if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
      cat /etc/ssl/certs/ca-certificates.crt ca.pem >trust.pem
    else
      cp ca.pem trust.pem
    fi
    chmod 644 ca.pem server.pem trust.pem
  )
}

add_hosts() {
  grep -q "$HOSTS_MARK" /etc/hosts 2>/dev/null && return
  if ! echo "127.0.0.1 $VAULT_HOST $LOGIN_HOST $HOSTS_MARK" >>/etc/hosts 2>/dev/null; then
    log "cannot add '127.0.0.1 $VAULT_HOST $LOGIN_HOST' to /etc/hosts (run as root, or add it by hand)"
    exit 1
  fi
}

remove_hosts() {
  grep -q "$HOSTS_MARK" /etc/hosts 2>/dev/null || return 0
  # /etc/hosts may be a bind mount: rewrite it in place rather than replacing the file.
  local kept
  kept="$(grep -v "$HOSTS_MARK" /etc/hosts)"
  printf '%s\n' "$kept" >/etc/hosts 2>/dev/null || log "cannot edit /etc/hosts"
}

client_secret() {
  # A random secret per machine for a throwaway in-memory test vault; never a real credential.
  local f="$DIR/client-secret"
  if [ ! -s "$f" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$f")
  fi
  cat "$f"
}

healthy() {
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$ADMIN_PORT/_admin/health" 2>/dev/null &&
    curl -fsS -o /dev/null --max-time 2 --cacert "$DIR/ca.pem" \
      --resolve "$VAULT_HOST:$PORT:127.0.0.1" \
      "https://$VAULT_HOST:$PORT/common/discovery/instance" 2>/dev/null
}

write_state() {
  umask 077
  cat >"$STATE" <<EOF
KV_EMULATOR_PYTHON=$VENV/bin/python
KV_EMULATOR_VAULT_URL=$VAULT_URL
KV_EMULATOR_ADMIN_URL=http://127.0.0.1:$ADMIN_PORT
KV_EMULATOR_CA=$DIR/ca.pem
SSL_CERT_FILE=$DIR/trust.pem
AZURE_AUTHORITY_HOST=$AUTHORITY
REQUESTS_CA_BUNDLE=$DIR/trust.pem
AZURE_TENANT_ID=$TENANT
KV_EMULATOR_CLIENT_SECRET=$(client_secret)
EOF
}

start() {
  install_venv
  make_certificates
  add_hosts
  write_state
  already_running "$VAULT_URL" && return
  log "starting the emulator on 127.0.0.1:$PORT (admin 127.0.0.1:$ADMIN_PORT), log $LOG"
  KV_EMULATOR_CLIENT_SECRET="$(client_secret)" nohup "$VENV/bin/python" "$EMULATOR" \
    --port "$PORT" --admin-port "$ADMIN_PORT" --cert "$DIR/server.pem" --key "$DIR/server.key" \
    --vault-url "$VAULT_URL" --tenant "$TENANT" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  await_ready "$VAULT_URL"
}

stop() {
  stop_process
  remove_hosts
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) running && healthy ;;
  env)
    [ -s "$STATE" ] || { log "not started: run $0 start first"; exit 1; }
    sed 's/^/export /' "$STATE"
    # What a shell needs to run the plugin by hand: the client-secret credential the emulator
    # accepts (any client id; "deny-<permission>" ids lack that permission).
    echo "export AZURE_CLIENT_ID=notation-quickstart"
    echo "export AZURE_CLIENT_SECRET=$(client_secret)"
    ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
