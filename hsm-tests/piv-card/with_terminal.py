#!/usr/bin/env python3
"""Runs a plugin the way notation runs it from a person's shell: request on stdin, response on
stdout, errors on stderr (all pipes), and a controlling terminal of its own (a pseudo-terminal)
that this script watches. For the tests of notation-yubikey's PIN prompt and touch notice.

  with_terminal.py --transcript FILE [--answer TEXT] [--no-terminal] -- PROGRAM ARGS...

--answer: typed (with Enter) once the terminal shows "PIN for". --no-terminal: the program gets
no controlling terminal at all (a new session), as in CI. Stdin is passed to the program; its
stdout and stderr are passed back; the exit status is the program's.
"""
import argparse
import os
import pty
import select
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--transcript", required=True)
    ap.add_argument("--answer")
    ap.add_argument("--no-terminal", action="store_true")
    ap.add_argument("program", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    request = sys.stdin.buffer.read()

    if args.no_terminal:
        proc = subprocess.run(program, input=request, capture_output=True,
                              start_new_session=True, timeout=120)
        open(args.transcript, "wb").close()
        sys.stdout.buffer.write(proc.stdout)
        sys.stderr.buffer.write(proc.stderr)
        return proc.returncode

    master, slave = pty.openpty()
    slave_name = os.ttyname(slave)

    def controlling_terminal():
        os.setsid()
        # A session leader that opens a terminal gets it as its controlling terminal.
        os.close(os.open(slave_name, os.O_RDWR))

    proc = subprocess.Popen(program, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=controlling_terminal)
    # The parent keeps the slave open while the program runs: with no slave descriptor open
    # (before the program opens /dev/tty), reading the master fails with EIO.
    proc.stdin.write(request)
    proc.stdin.close()
    proc.stdin = None
    seen = b""
    answered = False
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            seen += chunk
        if args.answer is not None and not answered and b"PIN for" in seen:
            os.write(master, args.answer.encode() + b"\n")
            answered = True
    out, err = proc.communicate(timeout=120)
    os.close(slave)
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                break
            seen += os.read(master, 4096)
    except OSError:
        pass
    with open(args.transcript, "wb") as f:
        f.write(seen)
    sys.stdout.buffer.write(out)
    sys.stderr.buffer.write(err)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
