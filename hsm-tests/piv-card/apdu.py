"""Command APDUs (short and extended), command chaining and response chaining (GET RESPONSE)."""

import sys
import traceback
from dataclasses import dataclass


class CardError(Exception):
    """A command that ends with a status word other than 9000."""

    def __init__(self, sw: int):
        super().__init__(f"SW {sw:04X}")
        self.sw = sw


SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_SECURITY = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_CONDITIONS = 0x6985
SW_WRONG_DATA = 0x6A80
SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_NOT_FOUND = 0x6A82
SW_REF_NOT_FOUND = 0x6A88
SW_WRONG_P1P2 = 0x6A86
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_UNKNOWN = 0x6F00


@dataclass
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    extended: bool

    @classmethod
    def parse(cls, raw: bytes) -> "Command":
        if len(raw) < 4:
            raise CardError(SW_WRONG_LENGTH)
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        data = b""
        extended = False
        if len(body) <= 1:
            pass  # case 1 or case 2 short
        elif body[0] != 0:
            n = body[0]
            data = body[1 : 1 + n]
            if len(data) != n or len(body) - 1 - n > 1:
                raise CardError(SW_WRONG_LENGTH)
        else:
            extended = True
            if len(body) > 3:
                n = int.from_bytes(body[1:3], "big")
                data = body[3 : 3 + n]
                if len(data) != n or len(body) - 3 - n not in (0, 2):
                    raise CardError(SW_WRONG_LENGTH)
            elif len(body) != 3:
                raise CardError(SW_WRONG_LENGTH)
        return cls(cla, ins, p1, p2, data, extended)


class Channel:
    """Joins chained commands (CLA bit 0x10) and hands out long responses 256 bytes at a time
    to short-APDU clients (61xx + GET RESPONSE), as a YubiKey does; extended-APDU clients get
    the whole response at once."""

    def __init__(self, handler):
        self.handler = handler  # callable(Command) -> bytes, raises CardError
        self.chained = b""
        self.pending = b""

    def reset(self):
        self.chained = b""
        self.pending = b""

    def transmit(self, raw: bytes) -> bytes:
        try:
            cmd = Command.parse(raw)
            if cmd.ins == 0xC0 and cmd.cla & 0x10 == 0:  # GET RESPONSE
                return self._chunk()
            self.pending = b""
            if cmd.cla & 0x10:
                self.chained += cmd.data
                return SW_OK.to_bytes(2, "big")
            if self.chained:
                cmd.data = self.chained + cmd.data
                self.chained = b""
            cmd.cla &= ~0x10
            out = self.handler(cmd)
            if cmd.extended:
                return out + SW_OK.to_bytes(2, "big")
            self.pending = out
            return self._chunk()
        except CardError as e:
            self.chained = b""
            return e.sw.to_bytes(2, "big")
        except Exception:  # a bug in the card: say so in its log, answer like a card, go on
            traceback.print_exc(file=sys.stderr)
            self.chained = b""
            return SW_UNKNOWN.to_bytes(2, "big")

    def _chunk(self) -> bytes:
        chunk, self.pending = self.pending[:256], self.pending[256:]
        if self.pending:
            return chunk + bytes([0x61, min(len(self.pending), 256) & 0xFF])
        return chunk + SW_OK.to_bytes(2, "big")
