#!/usr/bin/env python3
"""A virtual YubiKey 5 (firmware 5.7) PIV card for the tests, inserted into vsmartcard's
virtual reader (vpcd) of a pcscd.

  card.py init --dir DIR --serial N [--mgmt-key-type aes192|tdes] [--attestation-root FILE]
      makes a factory-fresh card in DIR (default PIN 123456, PUK 12345678, the default
      management key 010203...08) with its attestation key (f9), whose certificate is issued
      by a test root written to FILE (PEM); an existing card is left as it is
  card.py probe [--expect N]
      prints the serial of the card in every Yubico reader of the pcscd that
      PCSCLITE_CSOCK_NAME names (pyscard); exits 1 unless there are at least N (1)
  card.py run --dir DIR [--port 35963] [--host 127.0.0.1] [--touch-timeout 15]
      inserts the card into the reader on host:port and answers it until killed

A key with a touch policy waits for the file DIR/touch (which it consumes) and fails like a
YubiKey (SW 6982) when none appears within the touch timeout (--touch-timeout, or the seconds
in DIR/touch-timeout). DIR/fault injects faults (see
vpcd.py)."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keys  # noqa: E402
import vpcd  # noqa: E402
from apdu import Channel  # noqa: E402
from applet import Card  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402
from state import STATE_FILE, State  # noqa: E402


def init(args) -> None:
    if os.path.exists(os.path.join(args.dir, STATE_FILE)):
        return
    root, f9_key, f9_cert = keys.attestation_ca(args.serial)
    mgmt_type = {"aes192": keys.AES192, "tdes": keys.TDES}[args.mgmt_key_type]
    State.create(args.dir, args.serial, mgmt_type, f9_key, f9_cert.public_bytes(Encoding.DER))
    root_pem = root.public_bytes(Encoding.PEM)
    with open(args.attestation_root or os.path.join(args.dir, "attestation-root.pem"), "wb") as f:
        f.write(root_pem)


def run(args) -> None:
    card = Card(State(args.dir), touch_timeout=args.touch_timeout)
    vpcd.serve(card, Channel(card.handle), args.host, args.port, args.dir)


def probe(args) -> None:
    from smartcard.System import readers

    found = 0
    for reader in readers():
        if "yubico" not in str(reader).lower():
            continue
        conn = reader.createConnection()
        try:
            conn.connect()
            conn.transmit(list(bytes.fromhex("00a4040005a000000308")))
            data, sw1, sw2 = conn.transmit([0, 0xF8, 0, 0])
            conn.disconnect()
        except Exception as e:  # no card in this reader (yet)
            print(f"{reader}: {e}")
            continue
        if (sw1, sw2) == (0x90, 0):
            print(f"{reader}: serial {int.from_bytes(bytes(data), 'big')}")
            found += 1
    sys.exit(0 if found >= args.expect else 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init")
    p.add_argument("--dir", required=True)
    p.add_argument("--serial", type=int, required=True)
    p.add_argument("--mgmt-key-type", choices=["aes192", "tdes"], default="aes192")
    p.add_argument("--attestation-root")
    p.set_defaults(func=init)
    p = sub.add_parser("probe")
    p.add_argument("--expect", type=int, default=1)
    p.set_defaults(func=probe)
    p = sub.add_parser("run")
    p.add_argument("--dir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=35963)
    p.add_argument("--touch-timeout", type=float, default=15.0)
    p.set_defaults(func=run)
    args = parser.parse_args()
    try:
        args.func(args)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
