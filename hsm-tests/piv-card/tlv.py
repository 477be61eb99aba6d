"""BER-TLV as PIV uses it: one- or two-byte tags (0x7F49, 0x5F..), lengths up to 0xFFFF."""


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n <= 0xFF:
        return bytes([0x81, n])
    if n <= 0xFFFF:
        return bytes([0x82]) + n.to_bytes(2, "big")
    raise ValueError(f"TLV value of {n} bytes is too long")


def tlv(tag: int, value: bytes = b"") -> bytes:
    tag_bytes = tag.to_bytes(2 if tag > 0xFF else 1, "big")
    return tag_bytes + encode_length(len(value)) + value


def parse(data: bytes) -> list[tuple[int, bytes]]:
    """All TLVs of `data`, in order. Raises ValueError on a malformed encoding."""
    out = []
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:  # a two-byte tag
            if i >= len(data):
                raise ValueError("truncated tag")
            tag = (tag << 8) | data[i]
            i += 1
        if i >= len(data):
            raise ValueError("truncated length")
        n = data[i]
        i += 1
        if n & 0x80:
            width = n & 0x7F
            if width not in (1, 2) or i + width > len(data):
                raise ValueError("bad length")
            n = int.from_bytes(data[i : i + width], "big")
            i += width
        if i + n > len(data):
            raise ValueError("value runs past the end")
        out.append((tag, data[i : i + n]))
        i += n
    return out


def parse_dict(data: bytes) -> dict[int, bytes]:
    return dict(parse(data))


def unpack(tag: int, data: bytes) -> bytes:
    """The value of `data`, which must be exactly one TLV with `tag`."""
    items = parse(data)
    if len(items) != 1 or items[0][0] != tag:
        raise ValueError(f"expected one TLV with tag {tag:#x}")
    return items[0][1]
