#!/usr/bin/env bash
# Starts or stops the virtual PIV cards (hsm-tests/piv-card/: two YubiKey 5 look-alikes with
# firmware 5.7) in a private pcscd, for the YubiKey / smart-card tests (YKCS11, yubico-piv-tool,
# ykman, the yubikey crate).
#
#   scripts/piv-card.sh start    install the packages (pcscd, vsmartcard-vpcd, ykcs11,
#                                yubico-piv-tool) and the venv (pinned cryptography, pyscard and
#                                Yubico's yubikey-manager), make the two cards if they do not
#                                exist, start pcscd and the cards, wait until both answer;
#                                idempotent
#   scripts/piv-card.sh stop     stop pcscd and the cards (the cards' state is kept)
#   scripts/piv-card.sh status   exit 0 if both cards answer
#   scripts/piv-card.sh env      print the `export ...` lines a shell needs to use the cards
#
# vpcd (vsmartcard's reader driver) listens for its card on TCP port 35963 (and 35964 for the
# second reader) on every interface, so pcscd and the cards run in their own network namespace
# (unshare --net, loopback only): nothing listens on the machine's interfaces. They also get
# their own mount namespace in which ${CACHE}/piv-card/run is bind-mounted on /run/pcscd, so
# this pcscd's socket is ${CACHE}/piv-card/run/pcscd.comm and never the machine's default one;
# clients find it through PCSCLITE_CSOCK_NAME (libpcsclite honours it). The readers are called
# "Yubico YubiKey OTP+FIDO+CCID 00 00" and "... 00 01" (one vpcd reader with two slots) because YKCS11, yubico-piv-tool and ykman
# only use readers whose name says Yubico.
# The cards' state (keys, certificates, PIN counters) is kept in piv-card/card1 and card2 until
# `rm -rf` of the directory; each card's attestation test root is card<N>/attestation-root.pem.
# The tests that use the cards take the lock piv-card/lock (flock) and run one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/notation-plugins"
VENV="$CACHE/piv-venv"
DIR="$CACHE/piv-card"
RUN="$DIR/run"
PIDFILE="$DIR/stack.pid"
LOG="$DIR/stack.log"
CARD="$PWD/hsm-tests/piv-card/card.py"
SERIALS=(18000001 18000002)
PORTS=(35963 35964)
# Pinned: versions verified to install and to pass hsm-tests/tests/piv_card.rs (the
# conformance test).
PACKAGES=(cryptography==46.0.3 pyscard==2.3.1 yubikey-manager==5.9.2)

log() { echo "piv-card.sh: $*" >&2; }

ykcs11() {
  local f
  for f in /usr/lib/*/libykcs11.so.2 /usr/lib/*/libykcs11.so /usr/lib/libykcs11.so; do
    [ -e "$f" ] && { echo "$f"; return; }
  done
  echo /usr/lib/x86_64-linux-gnu/libykcs11.so.2
}

install_venv() {
  local stamp="$VENV/.notation-plugins-packages"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${PACKAGES[*]}" ]; then
    return
  fi
  log "installing ${PACKAGES[*]} into $VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}"
  echo "${PACKAGES[*]}" >"$stamp"
}

make_cards() {
  mkdir -p "$DIR/conf" "$RUN"
  for i in 0 1; do
    "$VENV/bin/python" "$CARD" init --dir "$DIR/card$((i + 1))" --serial "${SERIALS[$i]}"
  done
  # One vpcd reader has two slots, the second on the next port.
  printf 'FRIENDLYNAME "Yubico YubiKey OTP+FIDO+CCID"\nDEVICENAME /dev/null:0x%X\nLIBPATH %s\nCHANNELID 0x%X\n' \
    "${PORTS[0]}" /usr/lib/pcsc/drivers/serial/libifdvpcd.so "${PORTS[0]}" >"$DIR/conf/yubikey"
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

healthy() {
  PCSCLITE_CSOCK_NAME="$RUN/pcscd.comm" timeout 10 "$VENV/bin/python" "$CARD" probe --expect 2 \
    >/dev/null 2>&1
}

write_env() {
  umask 077
  cat >"$DIR/state.env" <<EOF2
PCSCLITE_CSOCK_NAME=$RUN/pcscd.comm
PIV_CARD_DIR=$DIR
PIV_CARD_PYTHON=$VENV/bin/python
PIV_CARD_YKMAN=$VENV/bin/ykman
PIV_CARD_YKCS11=$(ykcs11)
PIV_CARD_LOCK=$DIR/lock
PIV_CARD_SERIALS=${SERIALS[0]},${SERIALS[1]}
EOF2
}

stop_stack() {
  if running; then
    local pid
    pid="$(cat "$PIDFILE")"
    # The stack runs in its own session (setsid): its process group holds pcscd and the cards.
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$PIDFILE"
}

start() {
  if [ "$(id -u)" != 0 ]; then
    log "needs root (unshare --net, and the bind mount of its own /run/pcscd): run it as root, as CI does"
    exit 1
  fi
  # Test processes may start it at the same moment: one start at a time.
  mkdir -p "$DIR"
  exec 9>"$DIR/start.lock"
  flock 9
  scripts/install-deps.sh
  install_venv
  make_cards
  write_env
  if running && healthy; then
    log "already running (pid $(cat "$PIDFILE")); for a shell: eval \"\$($0 env)\""
    return
  fi
  if running; then
    # A test holding the cards (the card lock) may have one pulled out, slowed down or waiting
    # for a touch: the stack is judged, and restarted, only once no test holds them.
    exec 8>"$DIR/lock"
    flock -w 300 8 || true
    if healthy; then
      log "already running (pid $(cat "$PIDFILE")); for a shell: eval \"\$($0 env)\""
      return
    fi
    stop_stack
  fi
  rm -f "$RUN/pcscd.comm" "$RUN/pcscd.pid"
  log "starting pcscd and the cards (serials ${SERIALS[*]}) in a private network namespace, log $LOG"
  mkdir -p /run/pcscd
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid unshare --net --mount --propagation private bash -c '
    set -e
    ip link set lo up
    mount --bind "$1" /run/pcscd
    pcscd --foreground --config "$2" &
    "$3" "$4" run --dir "$5/card1" --port "$6" &
    "$3" "$4" run --dir "$5/card2" --port "$7" &
    wait' stack "$RUN" "$DIR/conf" "$VENV/bin/python" "$CARD" "$DIR" "${PORTS[0]}" "${PORTS[1]}" \
    >"$LOG" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if healthy; then
      log "ready (pid $(cat "$PIDFILE")); for a shell: eval \"\$($0 env)\""
      return
    fi
    if ! running; then
      log "the stack exited; its log:"
      tail -n 30 "$LOG" >&2
      exit 1
    fi
    sleep 0.2
  done
  log "the cards did not answer within 20 s; its log:"
  tail -n 30 "$LOG" >&2
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop_stack ;;
  status) running && healthy ;;
  env)
    [ -s "$DIR/state.env" ] || { log "not started: run $0 start first"; exit 1; }
    sed 's/^/export /' "$DIR/state.env"
    ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac
