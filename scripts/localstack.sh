#!/usr/bin/env bash
# Starts or stops LocalStack (KMS and Secrets Manager only) on 127.0.0.1:4566 without Docker,
# for the AWS KMS plugin's tests.
#
#   scripts/localstack.sh start    install into a venv if needed, start, wait until healthy
#   scripts/localstack.sh stop     stop the instance started by `start`
#   scripts/localstack.sh status   print whether it is running
#
# Both commands are idempotent. State lives under ${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins:
# localstack-venv/ (the Python environment), localstack/ (pid file, log, LocalStack's filesystem).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins"
VENV="$CACHE/localstack-venv"
STATE="$CACHE/localstack"
PIDFILE="$STATE/localstack.pid"
LOG="$STATE/localstack.log"
HEALTH="http://127.0.0.1:4566/_localstack/health"
PYTHON="${LOCALSTACK_PYTHON:-python3.11}"
PACKAGES=(
  "localstack-core[runtime]==4.13.1"
  "cbor2==5.6.5"
  "pyopenssl==25.1.0"
  "cryptography==45.0.7"
  "service-identity==24.2.0"
)

log() { echo "localstack.sh: $*" >&2; }

healthy() {
  curl -fsS --max-time 2 "$HEALTH" 2>/dev/null | grep -q '"kms": *"\(available\|running\)"'
}

running_pid() {
  [ -f "$PIDFILE" ] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install() {
  if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import localstack.runtime.main' 2>/dev/null; then
    return
  fi
  command -v "$PYTHON" >/dev/null || PYTHON=python3
  log "installing LocalStack into $VENV (takes a few minutes the first time)"
  "$HERE/install-deps.sh"
  mkdir -p "$CACHE"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet "${PACKAGES[@]}"
}

start() {
  if running_pid >/dev/null && healthy; then
    log "already running (pid $(running_pid))"
    return
  fi
  if healthy; then
    log "a LocalStack is already listening on 127.0.0.1:4566; using it"
    return
  fi
  install
  mkdir -p "$STATE/fs"
  if ! running_pid >/dev/null; then
    log "starting (log: $LOG)"
    (
      cd "$STATE"
      # GATEWAY_SERVER=hypercorn: LocalStack's default (twisted) gateway ignores the host of
      # GATEWAY_LISTEN for IPv4 and listens on 0.0.0.0; hypercorn binds exactly 127.0.0.1.
      GATEWAY_LISTEN=127.0.0.1:4566 \
        GATEWAY_SERVER=hypercorn \
        SERVICES=kms,secretsmanager \
        DNS_ADDRESS=0 \
        LOCALSTACK_TELEMETRY_DISABLED=1 \
        DISABLE_EVENTS=1 \
        FILESYSTEM_ROOT="$STATE/fs" \
        nohup setsid "$VENV/bin/python" -m localstack.runtime.main >"$LOG" 2>&1 </dev/null &
      echo $! >"$PIDFILE"
    )
  fi
  for _ in $(seq 1 120); do
    if healthy; then
      log "ready on 127.0.0.1:4566 (pid $(cat "$PIDFILE"))"
      return
    fi
    if ! running_pid >/dev/null; then
      log "LocalStack exited; last lines of $LOG:"
      tail -n 30 "$LOG" >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "not healthy after 120 s; see $LOG"
  exit 1
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PIDFILE"
    log "not running"
    return
  fi
  log "stopping pid $pid"
  # setsid made LocalStack a process-group leader: stop it and its workers together.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if healthy; then echo "running"; else echo "stopped"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
