#!/usr/bin/env bash
# Starts or stops the local Google Cloud KMS emulator (hsm-tests/gcpkms-emulator/emulator.py) for
# the gcp-kms plugin tests.
#
#   scripts/gcpkms-emulator.sh start    make the venv (pinned cryptography and Google's Python
#                                       clients, for the conformance test), then start the
#                                       emulator on 127.0.0.1 and wait until it answers; idempotent
#   scripts/gcpkms-emulator.sh stop     stop it (pid file)
#   scripts/gcpkms-emulator.sh status   exit 0 if it is running and answering
#   scripts/gcpkms-emulator.sh env      print the `export ...` lines a shell needs to use it
#
# The emulator serves Cloud KMS, Secret Manager and an OAuth token endpoint on plain HTTP at
# http://127.0.0.1:${GCPKMS_EMULATOR_PORT:-8490} (Google's Rust and Python clients accept an
# http:// endpoint). At start it writes a service-account key file and an authorized_user
# (gcloud-style) file whose token_uri is the emulator. Everything lives under
# ${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins/: the venv in gcpkms-venv/, the pid, log,
# credentials and state.env in gcpkms-emulator/.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins"
VENV="$CACHE/gcpkms-venv"
DIR="$CACHE/gcpkms-emulator"
PORT="${GCPKMS_EMULATOR_PORT:-8490}"
URL="http://127.0.0.1:$PORT"
PIDFILE="$DIR/emulator.pid"
LOG="$DIR/emulator.log"
STATE="$DIR/state.env"
EMULATOR="$PWD/hsm-tests/gcpkms-emulator/emulator.py"
# Pinned: versions verified to install and to pass hsm-tests/gcpkms-emulator/conformance.py.
PACKAGES=(cryptography==46.0.3 google-cloud-kms==3.18.0 google-cloud-secret-manager==2.32.0
  google-api-core==2.44.0 google-auth==2.63.0 google-crc32c==1.9.0)

log() { echo "gcpkms-emulator.sh: $*" >&2; }
source scripts/emulator-process.sh

healthy() {
  curl -fsS -o /dev/null --max-time 2 "$URL/_admin/health" 2>/dev/null
}

write_state() {
  umask 077
  cat >"$STATE" <<EOS
GCPKMS_EMULATOR_PYTHON=$VENV/bin/python
GCPKMS_EMULATOR_URL=$URL
GCPKMS_EMULATOR_SERVICE_ACCOUNT=$DIR/service-account.json
GCPKMS_EMULATOR_AUTHORIZED_USER=$DIR/authorized-user.json
GCPKMS_EMULATOR_PROJECT=notation-emulator
EOS
}

start() {
  install_venv
  mkdir -p "$DIR"
  write_state
  already_running "$URL" && return
  log "starting the emulator on 127.0.0.1:$PORT, log $LOG"
  nohup "$VENV/bin/python" "$EMULATOR" --port "$PORT" --state-dir "$DIR" >"$LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  await_ready "$URL"
}

stop() {
  stop_process
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) running && healthy ;;
  env)
    [ -s "$STATE" ] || { log "not started: run $0 start first"; exit 1; }
    sed 's/^/export /' "$STATE"
    # What a shell needs to run the plugin by hand against the emulator.
    echo "export GOOGLE_APPLICATION_CREDENTIALS=$DIR/service-account.json"
    echo "export NOTATION_GCP_KMS_ENDPOINT=$URL"
    echo "export NOTATION_GCP_KMS_SECRET_MANAGER_ENDPOINT=$URL"
    ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
