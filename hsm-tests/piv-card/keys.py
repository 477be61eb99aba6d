"""The card's cryptography (Python `cryptography`): PIV key algorithms, raw signing as the card
does it, the management key's block cipher, and the attestation certificates."""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from tlv import tlv

# PIV algorithm identifiers (SP 800-78-4 and Yubico's).
RSA1024, RSA2048, RSA3072, RSA4096 = 0x06, 0x07, 0x05, 0x16
ECCP256, ECCP384 = 0x11, 0x14
RSA_BITS = {RSA1024: 1024, RSA2048: 2048, RSA3072: 3072, RSA4096: 4096}
EC_CURVES = {ECCP256: ec.SECP256R1(), ECCP384: ec.SECP384R1()}
EC_HASHES = {ECCP256: hashes.SHA256(), ECCP384: hashes.SHA384()}
# Management key algorithms: identifier -> (key length, block cipher).
TDES, AES128, AES192, AES256 = 0x03, 0x08, 0x0A, 0x0C
MGMT_KEY_LEN = {TDES: 24, AES128: 16, AES192: 24, AES256: 32}

YUBICO_OID = "1.3.6.1.4.1.41482.3"


def generate(alg: int):
    if alg in RSA_BITS:
        return rsa.generate_private_key(65537, RSA_BITS[alg])
    if alg in EC_CURVES:
        return ec.generate_private_key(EC_CURVES[alg])
    raise ValueError(f"unsupported algorithm {alg:#x}")


def algorithm_of(key) -> int:
    if isinstance(key, rsa.RSAPrivateKey):
        return {v: k for k, v in RSA_BITS.items()}[key.key_size]
    return {"secp256r1": ECCP256, "secp384r1": ECCP384}[key.curve.name]


def import_key(alg: int, fields: dict[int, bytes]):
    """The private key of an IMPORT ASYMMETRIC KEY: RSA from its CRT parts (tags 01-05, public
    exponent 65537), EC from its private scalar (tag 06)."""
    if alg in RSA_BITS:
        p, q, dp, dq, qinv = (int.from_bytes(fields[t], "big") for t in (1, 2, 3, 4, 5))
        e = 65537
        n = p * q
        if n.bit_length() != RSA_BITS[alg]:
            raise ValueError("modulus size does not match the algorithm")
        d = pow(e, -1, (p - 1) * (q - 1))
        return rsa.RSAPrivateNumbers(
            p, q, d, dp, dq, qinv, rsa.RSAPublicNumbers(e, n)
        ).private_key()
    if alg in EC_CURVES:
        return ec.derive_private_key(int.from_bytes(fields[6], "big"), EC_CURVES[alg])
    raise ValueError(f"unsupported algorithm {alg:#x}")


def public_encoding(key) -> bytes:
    """The public key as GENERATE and GET METADATA return it (the content of tag 7F49)."""
    pub = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = pub.public_numbers()
        n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        return tlv(0x81, n) + tlv(0x82, e)
    point = pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return tlv(0x86, point)


def sign_raw(key, data: bytes) -> bytes:
    """GENERAL AUTHENTICATE with a private key: RSA is the raw private-key operation on an input
    of the modulus length; ECDSA signs the (truncated or zero-extended) digest, DER output."""
    if isinstance(key, rsa.RSAPrivateKey):
        size = key.key_size // 8
        if len(data) != size:
            raise ValueError("RSA input must have the modulus length")
        numbers = key.private_numbers()
        m = int.from_bytes(data, "big")
        n = numbers.public_numbers.n
        if m >= n:
            raise ValueError("RSA input is not below the modulus")
        return pow(m, numbers.d, n).to_bytes(size, "big")
    size = (key.curve.key_size + 7) // 8
    digest = data[:size].rjust(size, b"\0")
    alg = EC_HASHES[algorithm_of(key)]
    return key.sign(digest, ec.ECDSA(Prehashed(alg)))


def mgmt_cipher(alg: int, key: bytes) -> Cipher:
    if alg == TDES:
        return Cipher(TripleDES(key), modes.ECB())
    return Cipher(algorithms.AES(key), modes.ECB())


def block_size(alg: int) -> int:
    return 8 if alg == TDES else 16


def encrypt_block(alg: int, key: bytes, block: bytes) -> bytes:
    enc = mgmt_cipher(alg, key).encryptor()
    return enc.update(block) + enc.finalize()


def decrypt_block(alg: int, key: bytes, block: bytes) -> bytes:
    dec = mgmt_cipher(alg, key).decryptor()
    return dec.update(block) + dec.finalize()


def to_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def from_pem(pem: str):
    return serialization.load_pem_private_key(pem.encode(), None)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca_cert(subject: str, key, issuer: str, issuer_key, days: int) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def attestation_ca(serial: int):
    """A test attestation root (in place of Yubico's) and the card's f9 key with its
    certificate issued by that root. Returns (root cert, f9 key, f9 cert)."""
    root_key = ec.generate_private_key(ec.SECP384R1())
    root = _ca_cert(
        "notation-plugins virtual PIV attestation test root", root_key,
        "notation-plugins virtual PIV attestation test root", root_key, 7300,
    )
    f9_key = rsa.generate_private_key(65537, 2048)  # a YubiKey's f9 key is RSA-2048
    f9 = _ca_cert(
        f"Yubico PIV Attestation (virtual card {serial})", f9_key,
        root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value, root_key, 7300,
    )
    return root, f9_key, f9


def attestation(slot: int, key, f9_key, f9_cert: x509.Certificate, version: bytes,
                serial: int, pin_policy: int, touch_policy: int) -> bytes:
    """A YubiKey-shaped attestation certificate for the key in `slot` (DER)."""
    serial_der = x509.UnrecognizedExtension(
        x509.ObjectIdentifier(f"{YUBICO_OID}.7"),
        _der_integer(serial),
    )
    exts = [
        x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{YUBICO_OID}.3"), version),
        serial_der,
        x509.UnrecognizedExtension(
            x509.ObjectIdentifier(f"{YUBICO_OID}.8"), bytes([pin_policy, touch_policy])
        ),
        x509.UnrecognizedExtension(x509.ObjectIdentifier(f"{YUBICO_OID}.9"), b"\x01"),
    ]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(f"YubiKey PIV Attestation {slot:02x}"))
        .issuer_name(f9_cert.subject)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(os.urandom(16), "big") >> 1)
        .not_valid_before(f9_cert.not_valid_before_utc)
        .not_valid_after(f9_cert.not_valid_after_utc)
    )
    for ext in exts:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(f9_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _der_integer(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big")
    return bytes([0x02, len(body)]) + body
