"""The card side of vsmartcard's virtual reader (vpcd, a pcscd driver): a TCP client of the
reader's port. Every message is a two-byte big-endian length and its bytes; a one-byte message
from the reader is a control code (power off, power on, reset, ATR request), anything longer
is a command APDU answered by one response APDU.

Faults a test injects through the file `fault` of the card's directory, read before each
command: `slow <seconds>` answers every command that much later; `remove <seconds> [<INS>]`
drops the connection in the middle of the next command (with INS, hex: of the next command with
that instruction, e.g. 87 for GENERAL AUTHENTICATE), so the card is pulled out, and reconnects
after <seconds> (put back in); the file is then consumed.

A test counts the commands the card gets through the file `apdu.log` of the card's directory:
while it exists, the instruction byte of every command APDU is appended to it (hex, a line
each)."""

import os
import socket
import struct
import sys
import time

# The ATR of a YubiKey 5 over USB (TA1..., historical bytes "...YubiKey@").
ATR = bytes.fromhex("3bfd1300008131fe158073c021c057597562694b657940")
POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


def _recv_exact(sock, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        # vpcd writes a message's length and its bytes separately, with Nagle's algorithm on:
        # the second write waits for our ACK of the first. Acknowledge at once (Linux resets
        # TCP_QUICKACK after a while, so it is set before every read), or every command costs
        # a delayed-ACK timeout (40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        buf += chunk
    return buf


def _send(sock, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)


def _fault(directory: str, apdu: bytes):
    """The fault to inject before answering `apdu`: (kind, seconds), or (None, 0)."""
    path = os.path.join(directory, "fault")
    try:
        with open(path) as f:
            kind, *args = f.read().split()
    except FileNotFoundError:
        return None, 0.0
    seconds = float(args[0]) if args else 0.0
    if kind == "remove":
        if len(args) > 1 and (len(apdu) < 2 or apdu[1] != int(args[1], 16)):
            return None, 0.0
        os.unlink(path)
    return kind, seconds


def _log_command(directory: str, apdu: bytes) -> None:
    """Appends the command's INS to apdu.log, when a test made that file."""
    path = os.path.join(directory, "apdu.log")
    if len(apdu) >= 2 and os.path.exists(path):
        with open(path, "a") as log:
            log.write(f"{apdu[1]:02x}\n")


def serve(card, channel, host: str, port: int, directory: str) -> None:
    """Inserts the card into the reader at host:port and answers it until killed."""
    while True:
        try:
            sock = socket.create_connection((host, port))
        except OSError:
            time.sleep(0.2)  # the reader is not up yet
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        removed_for = None
        try:
            while True:
                (n,) = struct.unpack(">H", _recv_exact(sock, 2))
                msg = _recv_exact(sock, n)
                if n == 1:
                    code = msg[0]
                    if code == GET_ATR:
                        _send(sock, ATR)
                    elif code in (POWER_OFF, POWER_ON, RESET):
                        card.power_on()
                        channel.reset()
                    continue
                kind, arg = _fault(directory, msg)
                if kind == "slow":
                    time.sleep(arg)
                elif kind == "remove":
                    removed_for = arg
                    break
                _log_command(directory, msg)
                _send(sock, channel.transmit(msg))
        except ConnectionError as e:
            print(f"piv-card: {e}; reconnecting", file=sys.stderr)
        finally:
            sock.close()
        card.power_on()
        channel.reset()
        time.sleep(removed_for if removed_for is not None else 0.2)
