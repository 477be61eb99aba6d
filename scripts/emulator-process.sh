# Sourced by the emulator scripts (keyvault-emulator.sh, gcpkms-emulator.sh): one Python
# emulator process behind a pid file, in a venv of pinned packages. The script defines log(),
# healthy(), PIDFILE, LOG, CACHE, VENV and PACKAGES, and launches the process itself (its
# arguments differ); these are the parts that do not.

# The venv with exactly PACKAGES (pinned), made or remade when they change.
install_venv() {
  local stamp="$VENV/.notation-plugins-packages"
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${PACKAGES[*]}" ]; then
    return
  fi
  log "installing ${PACKAGES[*]} into $VENV"
  mkdir -p "$CACHE"
  scripts/install-deps.sh
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}"
  echo "${PACKAGES[*]}" >"$stamp"
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

# Already up and answering: says so and succeeds. A process that does not answer is ended, so
# that the caller starts a fresh one.
already_running() {
  if running && healthy; then
    log "already running (pid $(cat "$PIDFILE")) at $1"
    return 0
  fi
  if running; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    sleep 0.5
  fi
  return 1
}

# Waits up to 10 s for the process just started (its pid in PIDFILE) to answer at $1; on
# failure shows the end of its log and exits 1.
await_ready() {
  for _ in $(seq 1 100); do
    if healthy; then
      log "ready at $1 (pid $(cat "$PIDFILE")); for a shell: eval \"\$($0 env)\""
      return
    fi
    if ! running; then
      log "the emulator exited; its log:"
      tail -n 30 "$LOG" >&2
      exit 1
    fi
    sleep 0.1
  done
  log "the emulator did not answer within 10 s; its log:"
  tail -n 30 "$LOG" >&2
  exit 1
}

stop_process() {
  if running; then
    local pid
    pid="$(cat "$PIDFILE")"
    kill "$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$PIDFILE"
}
