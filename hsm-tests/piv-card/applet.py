"""The card's applications: PIV (NIST SP 800-73-4 with Yubico's extensions, as a YubiKey 5 with
firmware 5.7 answers) and the small part of Yubico's management application that ykman reads
(device info). `Card.handle` takes one (already de-chained) command and returns the response
data or raises CardError."""

import os
import time

from cryptography import x509

import keys
from apdu import (
    SW_AUTH_BLOCKED,
    SW_CONDITIONS,
    SW_FUNC_NOT_SUPPORTED,
    SW_INS_NOT_SUPPORTED,
    SW_NOT_FOUND,
    SW_REF_NOT_FOUND,
    SW_SECURITY,
    SW_WRONG_DATA,
    SW_WRONG_P1P2,
    CardError,
)
from state import DEFAULT_PIN, DEFAULT_PUK, F9_OBJECT, pad
from tlv import parse_dict, tlv, unpack

VERSION = bytes([5, 7, 1])
PIV_AID = bytes.fromhex("a000000308")
MGMT_AID = bytes.fromhex("a000000527471117")
PIV_SELECT = tlv(0x61, tlv(0x4F, bytes.fromhex("000010000100")) + tlv(0x79, tlv(0x4F, PIV_AID)))
DISCOVERY = tlv(0x7E, tlv(0x4F, bytes.fromhex("a0000003080000100001")) + tlv(0x5F2F, b"\x40\x00"))

SLOT_CARD_MGMT = 0x9B
PIN_REF, PUK_REF = 0x80, 0x81
KEY_SLOTS = {0x9A, 0x9C, 0x9D, 0x9E, 0xF9, *range(0x82, 0x96)}
PIN_NEVER, PIN_ONCE, PIN_ALWAYS = 1, 2, 3
TOUCH_NEVER, TOUCH_ALWAYS, TOUCH_CACHED = 1, 2, 3
ORIGIN_GENERATED, ORIGIN_IMPORTED = 1, 2
TOUCH_CACHE_SECONDS = 15


def cert_object(slot: int) -> int:
    """The data object holding a slot's certificate."""
    fixed = {0x9A: 0x5FC105, 0x9C: 0x5FC10A, 0x9D: 0x5FC10B, 0x9E: 0x5FC101, 0xF9: 0x5FFF01}
    return fixed[slot] if slot in fixed else 0x5FC10D + slot - 0x82


def default_pin_policy(slot: int) -> int:
    return {0x9C: PIN_ALWAYS, 0x9E: PIN_NEVER, 0xF9: PIN_NEVER}.get(slot, PIN_ONCE)


class Card:
    def __init__(self, state, touch_timeout: float = 15.0):
        self.state = state
        self.touch_timeout = touch_timeout
        self.power_on()

    # Session state: lost on reset and power-off (and when another application is selected).
    def power_on(self):
        self.selected = None
        self._clear_security()

    def _clear_security(self):
        self.pin_verified = False
        self.pin_fresh = False  # a VERIFY not yet used by a PIN-always key
        self.mgmt_authenticated = False
        self.witness = None
        self.touched_at = None

    @property
    def data(self):
        return self.state.data

    def handle(self, cmd) -> bytes:
        if cmd.ins == 0xA4:
            return self.select(cmd)
        if self.selected == "mgmt":
            return self.management(cmd)
        if self.selected != "piv":
            raise CardError(SW_INS_NOT_SUPPORTED)
        handler = self.PIV_INS.get(cmd.ins)
        if handler is None:
            raise CardError(SW_INS_NOT_SUPPORTED)
        return handler(self, cmd)

    def select(self, cmd) -> bytes:
        if cmd.p1 != 0x04:
            raise CardError(SW_WRONG_P1P2)
        aid = cmd.data
        if aid[:5] == PIV_AID:
            if self.selected != "piv":
                self._clear_security()
            self.selected = "piv"
            return PIV_SELECT
        if aid[:8] == MGMT_AID:
            self._clear_security()
            self.selected = "mgmt"
            return b"Virtual mgmt - FW version %d.%d.%d" % tuple(VERSION)
        raise CardError(SW_NOT_FOUND)

    def management(self, cmd) -> bytes:
        if cmd.ins != 0x1D:  # READ CONFIG (device info)
            raise CardError(SW_INS_NOT_SUPPORTED)
        if cmd.p1 != 0:
            return b"\0"
        piv_capability = (0x0010).to_bytes(2, "big")
        info = (
            tlv(0x01, piv_capability)
            + tlv(0x02, self.data["serial"].to_bytes(4, "big"))
            + tlv(0x03, piv_capability)
            + tlv(0x04, b"\x01")
            + tlv(0x05, VERSION)
            + tlv(0x0A, b"\0")
        )
        return bytes([len(info)]) + info

    # -- Yubico extensions: version and serial
    def get_version(self, cmd) -> bytes:
        return VERSION

    def get_serial(self, cmd) -> bytes:
        return self.data["serial"].to_bytes(4, "big")

    # -- PIN and PUK
    def _check_reference(self, which: str, given: bytes) -> None:
        """Compares `given` with the PIN or PUK, counting a failure; raises CardError unless it
        matches (63Cx: x tries left; 6983: blocked)."""
        retries = f"{which}_retries"
        if self.data[retries] == 0:
            raise CardError(SW_AUTH_BLOCKED)
        if len(given) != 8:
            raise CardError(SW_WRONG_DATA)
        if given.hex() != self.data[which]:
            self.data[retries] -= 1
            self.state.save()
            if which == "pin":
                self.pin_verified = self.pin_fresh = False
            raise CardError(0x63C0 | self.data[retries])
        self.data[retries] = self.data[f"{which}_max"]
        self.state.save()

    @staticmethod
    def _valid_new(value: bytes, minimum: int) -> bool:
        stripped = value.rstrip(b"\xff")
        return len(value) == 8 and minimum <= len(stripped) <= 8 and b"\xff" not in stripped

    def verify(self, cmd) -> bytes:
        if cmd.p2 != PIN_REF:
            raise CardError(SW_REF_NOT_FOUND)
        if cmd.p1 == 0xFF:  # Yubico: forget the verification
            self.pin_verified = self.pin_fresh = False
            return b""
        if not cmd.data:  # the counter, or 9000 when verified
            if self.pin_verified:
                return b""
            if self.data["pin_retries"] == 0:
                raise CardError(SW_AUTH_BLOCKED)
            raise CardError(0x63C0 | self.data["pin_retries"])
        self._check_reference("pin", cmd.data)
        self.pin_verified = self.pin_fresh = True
        return b""

    def change_reference(self, cmd) -> bytes:
        which = {PIN_REF: "pin", PUK_REF: "puk"}.get(cmd.p2)
        if which is None:
            raise CardError(SW_REF_NOT_FOUND)
        if len(cmd.data) != 16:
            raise CardError(SW_WRONG_DATA)
        old, new = cmd.data[:8], cmd.data[8:]
        self._check_reference(which, old)
        if not self._valid_new(new, 6):
            raise CardError(SW_WRONG_DATA)
        self.data[which] = new.hex()
        self.data[f"{which}_default"] = False
        self.state.save()
        if which == "pin":
            self.pin_verified = self.pin_fresh = True
        return b""

    def reset_retry(self, cmd) -> bytes:
        if cmd.p2 != PIN_REF:
            raise CardError(SW_REF_NOT_FOUND)
        if len(cmd.data) != 16:
            raise CardError(SW_WRONG_DATA)
        puk, new = cmd.data[:8], cmd.data[8:]
        self._check_reference("puk", puk)
        if not self._valid_new(new, 6):
            raise CardError(SW_WRONG_DATA)
        self.data["pin"] = new.hex()
        self.data["pin_retries"] = self.data["pin_max"]
        self.data["pin_default"] = False
        self.state.save()
        return b""

    def set_pin_retries(self, cmd) -> bytes:
        self._require_mgmt()
        if not self.pin_verified:
            raise CardError(SW_SECURITY)
        if not (1 <= cmd.p1 <= 255 and 1 <= cmd.p2 <= 255):
            raise CardError(SW_WRONG_P1P2)
        self.data.update(pin_max=cmd.p1, pin_retries=cmd.p1, puk_max=cmd.p2, puk_retries=cmd.p2)
        self.data.update(pin=pad(DEFAULT_PIN), puk=pad(DEFAULT_PUK))
        self.data.update(pin_default=True, puk_default=True)
        self.state.save()
        return b""

    def reset(self, cmd) -> bytes:
        if self.data["pin_retries"] or self.data["puk_retries"]:
            raise CardError(SW_CONDITIONS)
        self.state.factory_reset()
        self._clear_security()
        return b""

    # -- Management key
    def _require_mgmt(self):
        if not self.mgmt_authenticated:
            raise CardError(SW_SECURITY)

    def _authenticate_mgmt(self, cmd, dyn: dict) -> bytes:
        alg, key = self.data["mgmt_type"], bytes.fromhex(self.data["mgmt_key"])
        if cmd.p1 != alg:
            raise CardError(SW_WRONG_P1P2)
        size = keys.block_size(alg)
        if dyn.get(0x80) == b"" and 0x81 not in dyn:  # step 1: the encrypted witness
            self.mgmt_authenticated = False
            self.witness = os.urandom(size)
            return tlv(0x7C, tlv(0x80, keys.encrypt_block(alg, key, self.witness)))
        if 0x80 in dyn and 0x81 in dyn:  # step 2: the decrypted witness and our challenge
            witness, self.witness = self.witness, None
            if witness is None or dyn[0x80] != witness or len(dyn[0x81]) != size:
                raise CardError(SW_SECURITY)
            self.mgmt_authenticated = True
            return tlv(0x7C, tlv(0x82, keys.encrypt_block(alg, key, dyn[0x81])))
        raise CardError(SW_WRONG_DATA)

    def set_management_key(self, cmd) -> bytes:
        self._require_mgmt()
        if cmd.p1 != 0xFF or cmd.p2 not in (0xFE, 0xFF) or len(cmd.data) < 3:
            raise CardError(SW_WRONG_P1P2)
        alg = cmd.data[0]
        try:
            fields = parse_dict(cmd.data[1:])
        except ValueError:
            raise CardError(SW_WRONG_DATA)
        new = fields.get(SLOT_CARD_MGMT)
        if alg not in keys.MGMT_KEY_LEN or new is None or len(new) != keys.MGMT_KEY_LEN[alg]:
            raise CardError(SW_WRONG_DATA)
        self.data.update(
            mgmt_type=alg,
            mgmt_key=new.hex(),
            mgmt_default=False,
            mgmt_touch=TOUCH_ALWAYS if cmd.p2 == 0xFE else TOUCH_NEVER,
        )
        self.state.save()
        return b""

    # -- Keys
    def _slot(self, slot: int) -> int:
        if slot not in KEY_SLOTS:
            raise CardError(SW_WRONG_P1P2)
        return slot

    @staticmethod
    def _policies(fields: dict, slot: int) -> tuple[int, int]:
        pin = fields.get(0xAA, b"\0")[0] or default_pin_policy(slot)
        touch = fields.get(0xAB, b"\0")[0] or TOUCH_NEVER
        if pin not in (PIN_NEVER, PIN_ONCE, PIN_ALWAYS) or touch not in (1, 2, 3):
            raise CardError(SW_WRONG_DATA)
        return pin, touch

    def generate(self, cmd) -> bytes:
        self._require_mgmt()
        slot = self._slot(cmd.p2)
        try:
            fields = parse_dict(unpack(0xAC, cmd.data))
            alg = fields[0x80][0]
        except (ValueError, KeyError, IndexError):
            raise CardError(SW_WRONG_DATA)
        if alg not in keys.RSA_BITS and alg not in keys.EC_CURVES:
            raise CardError(SW_WRONG_DATA)
        pin, touch = self._policies(fields, slot)
        key = keys.generate(alg)
        self.state.put_key(slot, key, pin, touch, ORIGIN_GENERATED)
        return tlv(0x7F49, keys.public_encoding(key))

    def import_key(self, cmd) -> bytes:
        self._require_mgmt()
        slot = self._slot(cmd.p2)
        try:
            fields = parse_dict(cmd.data)
            key = keys.import_key(cmd.p1, fields)
        except (ValueError, KeyError):
            raise CardError(SW_WRONG_DATA)
        pin, touch = self._policies(fields, slot)
        self.state.put_key(slot, key, pin, touch, ORIGIN_IMPORTED)
        return b""

    def move_key(self, cmd) -> bytes:
        self._require_mgmt()
        source = self._slot(cmd.p2)
        entry = self.data["keys"].get(f"{source:02x}")
        if entry is None:
            raise CardError(SW_REF_NOT_FOUND)
        if cmd.p1 != 0xFF:
            target = self._slot(cmd.p1)
            self.data["keys"][f"{target:02x}"] = entry
        self.state.delete_key(source)
        return b""

    def _await_touch(self, policy: int) -> None:
        if policy == TOUCH_NEVER:
            return
        now = time.monotonic()
        if policy == TOUCH_CACHED and self.touched_at and now - self.touched_at < TOUCH_CACHE_SECONDS:
            return
        touch = os.path.join(self.state.directory, "touch")
        deadline = now + self._touch_timeout()
        while time.monotonic() < deadline:
            try:
                os.unlink(touch)
            except FileNotFoundError:
                time.sleep(0.05)
                continue
            self.touched_at = time.monotonic()
            return
        raise CardError(SW_SECURITY)  # as a YubiKey answers when no touch comes in time

    def _touch_timeout(self) -> float:
        """The card's touch timeout, or the one a test wrote to DIR/touch-timeout (seconds)."""
        try:
            with open(os.path.join(self.state.directory, "touch-timeout")) as f:
                return float(f.read())
        except (FileNotFoundError, ValueError):
            return self.touch_timeout

    def general_authenticate(self, cmd) -> bytes:
        try:
            dyn = parse_dict(unpack(0x7C, cmd.data))
        except ValueError:
            raise CardError(SW_WRONG_DATA)
        if cmd.p2 == SLOT_CARD_MGMT:
            return self._authenticate_mgmt(cmd, dyn)
        entry = self.state.key(self._slot(cmd.p2))
        if entry is None:
            raise CardError(SW_REF_NOT_FOUND)
        if cmd.p1 != entry["alg"] or dyn.get(0x82) != b"" or 0x81 not in dyn:
            raise CardError(SW_WRONG_DATA)
        if entry["pin"] == PIN_ONCE and not self.pin_verified:
            raise CardError(SW_SECURITY)
        if entry["pin"] == PIN_ALWAYS:
            if not self.pin_fresh:
                raise CardError(SW_SECURITY)
            self.pin_fresh = False
        self._await_touch(entry["touch"])
        try:
            signature = keys.sign_raw(entry["key"], dyn[0x81])
        except ValueError:
            raise CardError(SW_WRONG_DATA)
        return tlv(0x7C, tlv(0x82, signature))

    # -- Data objects
    @staticmethod
    def _object_id(data: bytes) -> int:
        try:
            oid = unpack(0x5C, data[: 2 + data[1]]) if data else b""
        except (ValueError, IndexError):
            raise CardError(SW_WRONG_DATA)
        if len(oid) not in (1, 3):
            raise CardError(SW_WRONG_DATA)
        return int.from_bytes(oid, "big")

    def get_data(self, cmd) -> bytes:
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            raise CardError(SW_WRONG_P1P2)
        oid = self._object_id(cmd.data)
        if oid == 0x7E:
            return DISCOVERY
        value = self.state.get_object(oid)
        if value is None:
            raise CardError(SW_NOT_FOUND)
        return tlv(0x53, value)

    def put_data(self, cmd) -> bytes:
        self._require_mgmt()
        if (cmd.p1, cmd.p2) != (0x3F, 0xFF):
            raise CardError(SW_WRONG_P1P2)
        oid = self._object_id(cmd.data)
        rest = cmd.data[2 + cmd.data[1] :]
        try:
            value = unpack(0x53, rest)
        except ValueError:
            raise CardError(SW_WRONG_DATA)
        if oid == 0x7E or not (oid >> 16 in (0x5F,) or oid == 0x7F61):
            raise CardError(SW_FUNC_NOT_SUPPORTED)
        self.state.put_object(oid, value)
        return b""

    # -- Metadata and attestation
    def get_metadata(self, cmd) -> bytes:
        d = self.data
        if cmd.p2 in (PIN_REF, PUK_REF):
            which = "pin" if cmd.p2 == PIN_REF else "puk"
            return (
                tlv(0x01, b"\xff")
                + tlv(0x05, bytes([d[f"{which}_default"]]))
                + tlv(0x06, bytes([d[f"{which}_max"], d[f"{which}_retries"]]))
            )
        if cmd.p2 == SLOT_CARD_MGMT:
            return (
                tlv(0x01, bytes([d["mgmt_type"]]))
                + tlv(0x02, bytes([0, d["mgmt_touch"]]))
                + tlv(0x05, bytes([d["mgmt_default"]]))
            )
        if cmd.p2 not in KEY_SLOTS:
            raise CardError(SW_REF_NOT_FOUND)
        entry = self.state.key(cmd.p2)
        if entry is None:
            raise CardError(SW_REF_NOT_FOUND)
        return (
            tlv(0x01, bytes([entry["alg"]]))
            + tlv(0x02, bytes([entry["pin"], entry["touch"]]))
            + tlv(0x03, bytes([entry["origin"]]))
            + tlv(0x04, keys.public_encoding(entry["key"]))
        )

    def attest(self, cmd) -> bytes:
        slot = self._slot(cmd.p1)
        if slot == 0xF9:
            raise CardError(SW_WRONG_P1P2)
        entry = self.state.key(slot)
        if entry is None:
            raise CardError(SW_REF_NOT_FOUND)
        if entry["origin"] != ORIGIN_GENERATED:
            raise CardError(SW_WRONG_DATA)  # imported keys cannot be attested
        f9 = self.state.key(0xF9)
        f9_key = f9["key"] if f9 else keys.from_pem(self.data["attestation"]["pem"])
        # The f9 certificate: the object's, or the factory one when the object was replaced.
        raw = self.state.get_object(F9_OBJECT)
        try:
            f9_cert = x509.load_der_x509_certificate(parse_dict(raw)[0x70])
        except (TypeError, KeyError, ValueError):
            f9_cert = x509.load_der_x509_certificate(bytes.fromhex(self.data["attestation"]["cert"]))
        return keys.attestation(
            slot, entry["key"], f9_key, f9_cert, VERSION, self.data["serial"],
            entry["pin"], entry["touch"],
        )

    PIV_INS = {
        0x20: verify,
        0x24: change_reference,
        0x2C: reset_retry,
        0x47: generate,
        0x87: general_authenticate,
        0xCB: get_data,
        0xDB: put_data,
        0xF6: move_key,
        0xF7: get_metadata,
        0xF8: get_serial,
        0xF9: attest,
        0xFA: set_pin_retries,
        0xFB: reset,
        0xFD: get_version,
        0xFE: import_key,
        0xFF: set_management_key,
    }
