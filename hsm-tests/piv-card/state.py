"""A card's persistent state (keys, certificates and other objects, PINs and their counters,
the management key) in one JSON file of the card's directory, rewritten atomically after every
change. A test card: private keys are stored unencrypted."""

import json
import os

import keys
from tlv import tlv

DEFAULT_PIN = b"123456"
DEFAULT_PUK = b"12345678"
DEFAULT_MGMT = bytes.fromhex("010203040506070801020304050607080102030405060708")
STATE_FILE = "card.json"
F9_OBJECT = 0x5FFF01


def certificate_object_value(cert_der: bytes) -> bytes:
    """A certificate data object's content: the certificate, CertInfo (not compressed), LRC."""
    return tlv(0x70, cert_der) + tlv(0x71, b"\0") + tlv(0xFE)


def pad(pin: bytes) -> str:
    return pin.ljust(8, b"\xff").hex()


def fresh(serial: int, mgmt_type: int) -> dict:
    """A card as it leaves the factory (or after RESET): default PIN, PUK, management key."""
    return {
        "serial": serial,
        "pin": pad(DEFAULT_PIN),
        "puk": pad(DEFAULT_PUK),
        "pin_default": True,
        "puk_default": True,
        "pin_max": 3,
        "puk_max": 3,
        "pin_retries": 3,
        "puk_retries": 3,
        "mgmt_type": mgmt_type,
        "mgmt_key": DEFAULT_MGMT.hex(),
        "mgmt_default": True,
        "mgmt_touch": 1,
        "keys": {},
        "objects": {},
    }


class State:
    def __init__(self, directory: str):
        self.directory = directory
        self.path = os.path.join(directory, STATE_FILE)
        with open(self.path) as f:
            self.data = json.load(f)

    @staticmethod
    def create(directory: str, serial: int, mgmt_type: int, f9_key, f9_cert_der: bytes):
        """A factory-fresh card with its attestation key and certificate (slot f9)."""
        os.makedirs(directory, exist_ok=True)
        data = fresh(serial, mgmt_type)
        data["attestation"] = {"pem": keys.to_pem(f9_key), "cert": f9_cert_der.hex()}
        data["factory_mgmt_type"] = mgmt_type
        State._write(os.path.join(directory, STATE_FILE), data)
        state = State(directory)
        state._restore_attestation()

    def _restore_attestation(self):
        """The factory's f9 key and certificate, which a reset keeps (as on a YubiKey)."""
        factory = self.data["attestation"]
        self.put_key(0xF9, keys.from_pem(factory["pem"]), 1, 1, 2)
        self.put_object(F9_OBJECT, certificate_object_value(bytes.fromhex(factory["cert"])))

    def save(self):
        self._write(self.path, self.data)

    @staticmethod
    def _write(path: str, data: dict):
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)

    def factory_reset(self):
        kept = {k: self.data[k] for k in ("attestation", "factory_mgmt_type")}
        self.data = fresh(self.data["serial"], kept["factory_mgmt_type"])
        self.data.update(kept)
        self._restore_attestation()

    # Keys: slot -> {"alg", "pin", "touch", "origin", "pem"}
    def key(self, slot: int):
        entry = self.data["keys"].get(f"{slot:02x}")
        return entry and dict(entry, key=keys.from_pem(entry["pem"]))

    def put_key(self, slot: int, key, pin: int, touch: int, origin: int):
        self.data["keys"][f"{slot:02x}"] = {
            "alg": keys.algorithm_of(key),
            "pin": pin,
            "touch": touch,
            "origin": origin,
            "pem": keys.to_pem(key),
        }
        self.save()

    def delete_key(self, slot: int):
        self.data["keys"].pop(f"{slot:02x}", None)
        self.save()

    def get_object(self, oid: int):
        value = self.data["objects"].get(f"{oid:x}")
        return None if value is None else bytes.fromhex(value)

    def put_object(self, oid: int, value: bytes):
        if value:
            self.data["objects"][f"{oid:x}"] = value.hex()
        else:
            self.data["objects"].pop(f"{oid:x}", None)
        self.save()
