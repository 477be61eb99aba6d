#!/usr/bin/env python3
"""A local Azure Key Vault and Microsoft Entra token endpoint, for tests only.

It implements exactly the parts of the Key Vault REST API and of the Entra token endpoint that
notation-azure-keyvault and the official SDKs' conformance test (conformance.py) use:

* keys: create (RSA 2048/3072/4096, EC P-256/P-384/P-521, plus P-256K, RSA 1024 and oct keys so
  that unsupported keys can be refused), get (latest or a version), update attributes (enable or
  disable), sign (PS256/384/512, RS256/384/512, ES256/384/512; real keys, `cryptography`);
* certificates: create with a policy (issuer Self: key usage, EKUs, subject, validity, secret
  content type; issuer Unknown: a CSR, then merge of the CA's chain), the pending operation,
  import (PKCS#12, also encrypted with the empty password, or PEM with the key and chain), get;
* secrets: get (a certificate's backing secret as PKCS#12 or PEM with the key and chain), set;
* challenge-based bearer auth: a request without a token gets 401 and
  `WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/<tenant>",
  resource="https://vault.azure.net"`; tokens are checked for the Key Vault scope;
* Entra: `/{tenant}/oauth2/v2.0/token` with the client-credentials grant (client secret) and the
  federated client-assertion grant (workload identity), OpenID metadata and instance discovery;
  on the admin port, the App Service managed identity endpoint `/msi/token` (IDENTITY_ENDPOINT,
  X-IDENTITY-HEADER) and `/_admin/token`, a token in `az account get-access-token` form;
* any api-version (a request without one is refused); Key Vault's error body
  `{"error": {"code", "message", "innererror"}}` with an `x-ms-request-id`, including 401, 403,
  404 and 429 with Retry-After.

Permissions come from the client id: `deny-keys.sign+secrets.get` is a service principal without
those two permissions; every other client id has all of them. The client secret must be the one
given with --client-secret. A federated assertion must be a JWT whose payload has
`aud: api://AzureADTokenExchange` (its signature is not checked: this is a test vault).

Faults are set per test through the plain-HTTP admin port (never TLS, 127.0.0.1 only):
`POST /_admin/fault {"match": "/keys/name", "status": 429, "count": 2, "retry_after": "1"}` makes
the next `count` vault requests whose path contains `match` (and ends with `suffix`, if given)
fail with `status` (-1 = forever).
A fault with `"kind"` does something else to those requests: `"delay"` answers them after
`"seconds"`, `"hang"` never answers, `"flip_signature"` flips the last bit of the signature a
sign call returns, and `"der_signature"` returns that (r||s) ECDSA signature as ASN.1 DER.
The admin port also serves the vault API without authentication, for test set-up, and
`GET /_admin/requests?match=/keys/name` lists the requests received over TLS (vault API, the
unauthenticated challenge, token) whose "METHOD /path" contains `match` (the round trips a test
or the benchmark counts).

State is in memory only. Every HTTPS request is answered from one server for every host name the
test CA's certificate covers (the vault and the login host both resolve to 127.0.0.1).
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VAULT_SCOPE = "https://vault.azure.net"
PERMISSIONS = ("keys.get", "keys.sign", "keys.create", "keys.update", "certificates.get",
               "certificates.create", "certificates.import", "secrets.get", "secrets.set")
CURVES = {"P-256": (ec.SECP256R1, 32), "P-384": (ec.SECP384R1, 48), "P-521": (ec.SECP521R1, 66),
          "P-256K": (ec.SECP256K1, 32)}
HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
LOCK = threading.RLock()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def int_bytes(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


def now():
    return int(datetime.datetime.now(datetime.timezone.utc).timestamp())


class VaultError(Exception):
    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner
        self.headers = headers or {}


class Store:
    """Keys, certificates and secrets by name, each a list of versions (last = current)."""

    def __init__(self, vault_url):
        self.vault_url = vault_url.rstrip("/")
        self.keys, self.certs, self.secrets = {}, {}, {}
        self.faults = []
        # Every request over TLS (vault API, challenge, token), as "METHOD /path": round trips.
        self.requests = []
        self.tokens = {}
        self.pending_ops = {}

    # -- keys ------------------------------------------------------------------------------
    def key_bundle(self, name, entry):
        kid = f"{self.vault_url}/keys/{name}/{entry['version']}"
        priv = entry["private"]
        jwk = {"kid": kid, "kty": entry["kty"], "key_ops": entry["key_ops"]}
        if isinstance(priv, rsa.RSAPrivateKey):
            nums = priv.public_key().public_numbers()
            jwk.update(n=b64url(int_bytes(nums.n)), e=b64url(int_bytes(nums.e)))
        elif isinstance(priv, ec.EllipticCurvePrivateKey):
            crv = entry["crv"]
            size = CURVES[crv][1]
            nums = priv.public_key().public_numbers()
            jwk.update(crv=crv, x=b64url(int_bytes(nums.x, size)), y=b64url(int_bytes(nums.y, size)))
        out = {"key": jwk, "attributes": self.attributes(entry)}
        if entry.get("managed"):
            out["managed"] = True
        return out

    @staticmethod
    def attributes(entry):
        return {"enabled": entry["enabled"], "created": entry["created"], "updated": entry["created"],
                "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}

    def add_key(self, name, private, kty, crv=None, key_ops=None, enabled=True, version=None,
                managed=False):
        if key_ops is None:
            key_ops = ["sign", "verify"] if kty.startswith("EC") else \
                ["sign", "verify", "encrypt", "decrypt", "wrapKey", "unwrapKey"]
        entry = {"version": version or uuid.uuid4().hex, "private": private, "kty": kty, "crv": crv,
                 "key_ops": key_ops, "enabled": enabled, "created": now(), "managed": managed}
        self.keys.setdefault(name, []).append(entry)
        return entry

    def create_key(self, name, body):
        kty = body.get("kty")
        attrs = body.get("attributes") or {}
        if kty in ("RSA", "RSA-HSM"):
            size = int(body.get("key_size") or 2048)
            if size not in (1024, 2048, 3072, 4096):
                raise VaultError(400, "BadParameter", f"Invalid key size {size}.")
            private = rsa.generate_private_key(public_exponent=int(body.get("public_exponent") or 65537),
                                               key_size=size)
            crv = None
        elif kty in ("EC", "EC-HSM"):
            crv = body.get("crv") or "P-256"
            if crv not in CURVES:
                raise VaultError(400, "BadParameter", f"Invalid curve name {crv}.")
            private = ec.generate_private_key(CURVES[crv][0]())
        elif kty in ("oct", "oct-HSM"):
            private = os.urandom(32)
            crv = None
        else:
            raise VaultError(400, "BadParameter", f"Invalid key type {kty!r}.")
        entry = self.add_key(name, private, kty, crv, body.get("key_ops"), attrs.get("enabled", True))
        return self.key_bundle(name, entry)

    def find(self, table, kind, name, version):
        versions = table.get(name)
        if not versions:
            raise VaultError(404, f"{kind}NotFound",
                             f"A {kind.lower()} with (name/id) {name} was not found in this key vault. "
                             "If you recently deleted this "
                             f"{kind.lower()} you may be able to recover it using the correct recovery "
                             "command. For help resolving this issue, please see "
                             "https://go.microsoft.com/fwlink/?linkid=2125182")
        if not version:
            return versions[-1]
        for entry in versions:
            if entry["version"] == version:
                return entry
        raise VaultError(404, f"{kind}NotFound",
                         f"A {kind.lower()} with (name/id) {name}/{version} was not found in this key vault.")

    def usable_key(self, name, version, operation):
        entry = self.find(self.keys, "Key", name, version)
        if not entry["enabled"]:
            raise VaultError(403, "Forbidden", f"Operation {operation} is not allowed on a disabled key.",
                             inner="KeyDisabled")
        return entry

    def sign(self, name, version, body):
        entry = self.usable_key(name, version, "sign")
        if "sign" not in entry["key_ops"]:
            raise VaultError(403, "Forbidden", "Operation sign is not allowed by the key's key_ops.",
                             inner="KeyOperationForbidden")
        alg = body.get("alg") or ""
        digest = unb64url(body.get("value") or "")
        priv = entry["private"]
        m = re.fullmatch(r"(PS|RS|ES)(256|384|512)", alg)
        if not m:
            raise VaultError(400, "BadParameter", f"Invalid algorithm: {alg}.")
        family, bits = m.groups()
        algo = HASHES[bits]()
        if len(digest) != algo.digest_size:
            raise VaultError(400, "BadParameter",
                             f"Invalid length of the digest: {len(digest)} bytes for {alg}.")
        if family in ("PS", "RS"):
            if not isinstance(priv, rsa.RSAPrivateKey):
                raise VaultError(400, "BadParameter", f"Key and signing algorithm are incompatible: {alg}.")
            pad = padding.PSS(padding.MGF1(algo), algo.digest_size) if family == "PS" else padding.PKCS1v15()
            sig = priv.sign(digest, pad, utils.Prehashed(algo))
        else:
            if not isinstance(priv, ec.EllipticCurvePrivateKey) or \
                    {"256": "P-256", "384": "P-384", "512": "P-521"}[bits] != entry["crv"]:
                raise VaultError(400, "BadParameter", f"Key and signing algorithm are incompatible: {alg}.")
            r, s = utils.decode_dss_signature(priv.sign(digest, ec.ECDSA(utils.Prehashed(algo))))
            size = CURVES[entry["crv"]][1]
            sig = int_bytes(r, size) + int_bytes(s, size)
        return {"kid": f"{self.vault_url}/keys/{name}/{entry['version']}", "value": b64url(sig)}

    def update_key(self, name, version, body):
        entry = self.find(self.keys, "Key", name, version)
        attrs = body.get("attributes") or {}
        if "enabled" in attrs:
            entry["enabled"] = bool(attrs["enabled"])
        if body.get("key_ops"):
            entry["key_ops"] = body["key_ops"]
        return self.key_bundle(name, entry)

    # -- certificates ----------------------------------------------------------------------
    def cert_bundle(self, name, entry):
        version = entry["version"]
        leaf = entry["chain"][0]
        der = leaf.public_bytes(serialization.Encoding.DER)
        return {
            "id": f"{self.vault_url}/certificates/{name}/{version}",
            "kid": f"{self.vault_url}/keys/{name}/{version}",
            "sid": f"{self.vault_url}/secrets/{name}/{version}",
            "x5t": b64url(hashlib.sha1(der).digest()),
            "cer": base64.b64encode(der).decode(),
            "attributes": {**self.attributes(entry),
                           "nbf": int(leaf.not_valid_before_utc.timestamp()),
                           "exp": int(leaf.not_valid_after_utc.timestamp())},
            "policy": entry["policy"],
        }

    def store_certificate(self, name, private, chain, policy, content_type, enabled=True, pfx=None,
                          version=None):
        """Stores key, secret and certificate under one version. `pfx`: a password-less PKCS#12
        (base64) kept as the secret's value as given, as Key Vault does for an imported one.
        `version`: the version of a key already created (a merged pending certificate)."""
        if version is None:
            version = uuid.uuid4().hex
            if isinstance(private, rsa.RSAPrivateKey):
                kty, crv = "RSA", None
            else:
                crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521",
                       "secp256k1": "P-256K"}[private.curve.name]
                kty = "EC"
            self.add_key(name, private, kty, crv, enabled=enabled, version=version, managed=True)
        if content_type == "application/x-pem-file":
            value = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
            value += "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
        elif pfx is not None and content_type != "application/x-pem-file":
            content_type, value = "application/x-pkcs12", pfx
        else:
            content_type = "application/x-pkcs12"
            value = base64.b64encode(pkcs12.serialize_key_and_certificates(
                name.encode(), private, chain[0], chain[1:] or None,
                serialization.NoEncryption())).decode()
        self.secrets.setdefault(name, []).append(
            {"version": version, "value": value, "contentType": content_type, "enabled": enabled,
             "created": now(), "cert": name})
        policy = dict(policy or {})
        policy.setdefault("secret_props", {})["contentType"] = content_type
        policy["id"] = f"{self.vault_url}/certificates/{name}/policy"
        entry = {"version": version, "chain": chain, "policy": policy, "enabled": enabled,
                 "created": now()}
        self.certs.setdefault(name, []).append(entry)
        return self.cert_bundle(name, entry)

    def create_certificate(self, name, body):
        policy = body.get("policy") or {}
        issuer = (policy.get("issuer") or {}).get("name", "Self")
        if issuer not in ("Self", "Unknown"):
            raise VaultError(400, "BadParameter",
                             f"Issuer '{issuer}' is not supported by this emulator; use 'Self' or 'Unknown'.")
        kp = policy.get("key_props") or {}
        xp = policy.get("x509_props") or {}
        kty = kp.get("kty") or "RSA"
        if kty.startswith("EC"):
            crv = kp.get("crv") or "P-256"
            if crv not in CURVES:
                raise VaultError(400, "BadParameter", f"Invalid curve name {crv}.")
            private = ec.generate_private_key(CURVES[crv][0]())
            algo = {"P-256": hashes.SHA256, "P-384": hashes.SHA384, "P-521": hashes.SHA512,
                    "P-256K": hashes.SHA256}[crv]()
        else:
            size = int(kp.get("key_size") or 2048)
            private = rsa.generate_private_key(public_exponent=65537, key_size=size)
            algo = hashes.SHA256()
        subject = x509.Name.from_rfc4514_string(xp.get("subject") or f"CN={name}")
        if issuer == "Unknown":
            # A CA will issue it: the key is created now, the certificate when the CA's chain is
            # merged (POST /certificates/<name>/pending/merge).
            crv = kp.get("crv") if kty.startswith("EC") else None
            entry = self.add_key(name, private, "EC" if crv else "RSA", crv, managed=True)
            csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(private, algo)
            self.pending_ops[name] = {"version": entry["version"], "private": private, "policy": policy,
                                      "csr": csr.public_bytes(serialization.Encoding.DER),
                                      "enabled": (body.get("attributes") or {}).get("enabled", True)}
            return None
        months = int(xp.get("validity_months") or 12)
        start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=30 * months)))
        usages = set(xp.get("key_usage") or ["digitalSignature", "keyEncipherment"])
        ku = {k: k in usages for k in ("digitalSignature", "nonRepudiation", "keyEncipherment",
                                       "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign",
                                       "encipherOnly", "decipherOnly")}
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=ku["digitalSignature"], content_commitment=ku["nonRepudiation"],
            key_encipherment=ku["keyEncipherment"], data_encipherment=ku["dataEncipherment"],
            key_agreement=ku["keyAgreement"], key_cert_sign=ku["keyCertSign"], crl_sign=ku["cRLSign"],
            encipher_only=ku["encipherOnly"] and ku["keyAgreement"],
            decipher_only=ku["decipherOnly"] and ku["keyAgreement"]), critical=True)
        ekus = xp.get("ekus")
        if ekus is None:
            ekus = [ExtendedKeyUsageOID.SERVER_AUTH.dotted_string, ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string]
        if ekus:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.ObjectIdentifier(o) for o in ekus]), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        cert = builder.sign(private, algo)
        content_type = (policy.get("secret_props") or {}).get("contentType")
        enabled = (body.get("attributes") or {}).get("enabled", True)
        bundle = self.store_certificate(name, private, [cert], policy, content_type, enabled)
        return bundle

    def merge(self, name, body):
        op = self.pending_ops.get(name)
        if op is None:
            raise VaultError(404, "PendingCertificateNotFound", f"Pending certificate not found: {name}")
        try:
            chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in body.get("x5c") or []]
        except Exception as e:  # noqa: BLE001
            raise VaultError(400, "BadParameter", f"x5c is not a list of base64 DER certificates: {e}")
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        want = op["private"].public_key().public_bytes(serialization.Encoding.DER, spki)
        if not chain or chain[0].public_key().public_bytes(serialization.Encoding.DER, spki) != want:
            raise VaultError(400, "BadParameter", "Public key from x509 certificate and key of this "
                             "instance doesn't match")
        del self.pending_ops[name]
        content_type = (op["policy"].get("secret_props") or {}).get("contentType")
        return self.store_certificate(name, op["private"], chain, op["policy"], content_type,
                                      op["enabled"], version=op["version"])

    def pending(self, name):
        op = self.pending_ops.get(name)
        if op is not None:
            return {"id": f"{self.vault_url}/certificates/{name}/pending", "status": "inProgress",
                    "status_details": "Pending certificate created. Please merge the signed request.",
                    "cancellation_requested": False, "issuer": {"name": "Unknown"},
                    "request_id": op["version"], "csr": base64.b64encode(op["csr"]).decode()}
        entry = self.find(self.certs, "Certificate", name, None)
        return {"id": f"{self.vault_url}/certificates/{name}/pending", "status": "completed",
                "status_details": "", "cancellation_requested": False,
                "target": f"{self.vault_url}/certificates/{name}",
                "issuer": {"name": "Self"}, "request_id": entry["version"],
                "csr": base64.b64encode(b"").decode()}

    def import_certificate(self, name, body):
        value = body.get("value") or ""
        pwd = body.get("pwd")
        policy = body.get("policy") or {}
        content_type = (policy.get("secret_props") or {}).get("contentType")
        original = None
        if "-----BEGIN" not in value:
            # The SDKs send a PEM import base64-encoded too.
            try:
                decoded = base64.b64decode(value, validate=True)
            except ValueError:
                decoded = b""
            if b"-----BEGIN" in decoded:
                value = decoded.decode()
        if "-----BEGIN" in value:
            data = value.encode()
            private = None
            chain = []
            for m in re.finditer(rb"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", data, re.S):
                pem = m.group(0)
                if b"PRIVATE KEY" in m.group(1):
                    private = serialization.load_pem_private_key(pem, pwd.encode() if pwd else None)
                elif m.group(1) == b"CERTIFICATE":
                    chain.append(x509.load_pem_x509_certificate(pem))
            content_type = content_type or "application/x-pem-file"
        else:
            try:
                raw = base64.b64decode(value)
                try:
                    private, leaf, extra = pkcs12.load_key_and_certificates(raw, pwd.encode() if pwd else None)
                except ValueError:
                    if pwd:
                        raise
                    # Encrypted with the empty password (openssl pkcs12 -passout pass:).
                    private, leaf, extra = pkcs12.load_key_and_certificates(raw, b"")
                    original = value
            except Exception as e:  # noqa: BLE001 - any parse failure is a bad parameter
                raise VaultError(400, "BadParameter", f"The specified PEM X.509 certificate content can not "
                                 f"be read. Please check if certificate is in valid PEM format. ({e})")
            chain = [leaf] + list(extra or [])
            content_type = content_type or "application/x-pkcs12"
        if private is None or not chain:
            raise VaultError(400, "BadParameter", "Private key or certificate missing in the imported content.")
        # The leaf is the certificate of the private key; keep the others in the given order.
        pub = private.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        leaf = [c for c in chain if c.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == pub]
        if not leaf:
            raise VaultError(400, "BadParameter", "The private key does not match the certificate.")
        chain = leaf[:1] + [c for c in chain if c is not leaf[0]]
        enabled = (body.get("attributes") or {}).get("enabled", True)
        return self.store_certificate(name, private, chain, policy, content_type, enabled, original)

    # -- secrets ---------------------------------------------------------------------------
    def secret_bundle(self, name, entry):
        out = {"id": f"{self.vault_url}/secrets/{name}/{entry['version']}", "value": entry["value"],
               "attributes": self.attributes(entry)}
        if entry.get("contentType"):
            out["contentType"] = entry["contentType"]
        if entry.get("cert"):
            out["kid"] = f"{self.vault_url}/keys/{name}/{entry['version']}"
            out["managed"] = True
        return out

    def get_secret(self, name, version):
        entry = self.find(self.secrets, "Secret", name, version)
        if not entry["enabled"]:
            raise VaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                             inner="SecretDisabled")
        return self.secret_bundle(name, entry)

    def set_secret(self, name, body):
        entry = {"version": uuid.uuid4().hex, "value": body.get("value", ""),
                 "contentType": body.get("contentType"),
                 "enabled": (body.get("attributes") or {}).get("enabled", True), "created": now()}
        self.secrets.setdefault(name, []).append(entry)
        return self.secret_bundle(name, entry)


def tamper_signature(sig, kind):
    """A sign answer's signature made wrong for a test: its last bit flipped, or r||s as DER."""
    if kind == "flip_signature":
        return sig[:-1] + bytes([sig[-1] ^ 0x01]) if sig else sig
    half = len(sig) // 2
    r, s = int.from_bytes(sig[:half], "big"), int.from_bytes(sig[half:], "big")
    return utils.encode_dss_signature(r, s)


def route(store, method, path, body, allowed):
    """The vault API: (status, JSON) or VaultError."""
    parts = [urllib.parse.unquote(p) for p in path.split("/") if p]

    def need(permission, target):
        if permission not in allowed:
            collection, op = permission.split(".")
            raise VaultError(403, "Forbidden",
                             f"The user, group or application 'appid={allowed.client_id};"
                             f"oid=00000000-0000-0000-0000-000000000000' does not have {collection} {op} "
                             f"permission on key vault '{store.vault_url}'. For help resolving this issue, "
                             "please see https://go.microsoft.com/fwlink/?linkid=2125287",
                             inner="AccessDenied")

    if len(parts) < 2 or parts[0] not in ("keys", "certificates", "secrets"):
        raise VaultError(400, "BadParameter", f"Unknown path {path}")
    kind, name, rest = parts[0], parts[1], parts[2:]
    if not re.fullmatch(r"[0-9a-zA-Z-]{1,127}", name):
        raise VaultError(400, "BadParameter", f"The request URI contains an invalid name: {name}")
    with LOCK:
        if kind == "keys":
            if method == "POST" and rest == ["create"]:
                need("keys.create", name)
                return 200, store.create_key(name, body)
            if method == "POST" and rest and rest[-1] == "sign" and len(rest) <= 2:
                need("keys.sign", name)
                return 200, store.sign(name, rest[0] if len(rest) == 2 else None, body)
            if method == "GET" and len(rest) <= 1:
                need("keys.get", name)
                entry = store.usable_key(name, rest[0] if rest else None, "get")
                return 200, store.key_bundle(name, entry)
            if method == "PATCH" and len(rest) <= 1:
                need("keys.update", name)
                return 200, store.update_key(name, rest[0] if rest else None, body)
        elif kind == "certificates":
            if method == "POST" and rest == ["create"]:
                need("certificates.create", name)
                store.create_certificate(name, body)
                # Key Vault answers the create with the operation still in progress (the Python
                # SDK's poller returns nothing for an operation complete from the start); the next
                # GET of the pending operation finds it completed.
                return 202, {**store.pending(name), "status": "inProgress"}
            if method == "POST" and rest == ["pending", "merge"]:
                need("certificates.create", name)
                return 201, store.merge(name, body)
            if method == "GET" and rest == ["pending"]:
                need("certificates.get", name)
                return 200, store.pending(name)
            if method == "POST" and rest == ["import"]:
                need("certificates.import", name)
                return 200, store.import_certificate(name, body)
            if method == "GET" and rest == ["policy"]:
                need("certificates.get", name)
                return 200, store.find(store.certs, "Certificate", name, None)["policy"]
            if method == "GET" and len(rest) <= 1:
                need("certificates.get", name)
                entry = store.find(store.certs, "Certificate", name, rest[0] if rest else None)
                return 200, store.cert_bundle(name, entry)
        elif kind == "secrets":
            if method == "GET" and len(rest) <= 1:
                need("secrets.get", name)
                return 200, store.get_secret(name, rest[0] if rest else None)
            if method == "PUT" and not rest:
                need("secrets.set", name)
                return 200, store.set_secret(name, body)
    raise VaultError(405, "MethodNotAllowed", f"{method} {path} is not supported by this emulator")


class Principal(set):
    client_id = "admin"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kv-emulator/1"
    admin = False
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and delayed ACKs
    # add ~40 ms to every response on a keep-alive connection.
    disable_nagle_algorithm = True
    # Per-connection socket timeout: an idle or stalled client never holds a thread for long.
    timeout = 30

    def setup(self):
        # The TLS handshake runs here, in the connection's thread, not in the accepting one: a
        # client that connects and stalls (or rejects our certificate) blocks nobody else.
        self.tls_failed = False
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError) as e:
                # e.g. a client that does not trust the test CA (a test does that on purpose).
                self.tls_failed = True
                sys.stderr.write(f"{self.client_address[0]} TLS handshake failed: {e}\n")
        super().setup()

    def handle(self):
        if not self.tls_failed:
            super().handle()


    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    # -- plumbing --------------------------------------------------------------------------
    def reply(self, status, body, headers=None, content_type="application/json; charset=utf-8"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        self.send_header("x-ms-keyvault-service-version", "1.9.0.0")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def vault_error(self, e):
        self.reply(e.status, {"error": {"code": e.code, "message": e.message,
                                        "innererror": {"code": e.inner} if e.inner else None}}, e.headers)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def handle_any(self, method):
        try:
            url = urllib.parse.urlsplit(self.path)
            path = re.sub("/+", "/", url.path)
            raw = self.body()
            if not self.admin:
                with LOCK:
                    self.server.store.requests.append(f"{method} {path}")
            if self.admin:
                if path == "/_admin/fault" and method == "POST":
                    fault = json.loads(raw or b"{}")
                    with LOCK:
                        self.server.store.faults.append(fault)
                    return self.reply(200, {"ok": True})
                if path == "/_admin/health":
                    return self.reply(200, {"ok": True})
                if path == "/_admin/requests" and method == "GET":
                    needle = urllib.parse.parse_qs(url.query).get("match", [""])[0]
                    with LOCK:
                        seen = [r for r in self.server.store.requests if needle in r]
                    return self.reply(200, {"requests": seen})
                if path == "/_admin/token" and method == "POST":
                    # What a fake `az account get-access-token -o json` prints (Azure CLI tests).
                    client_id = json.loads(raw or b"{}").get("client_id", "azure-cli-user")
                    token = self.issue_token(client_id)
                    return self.reply(200, {"accessToken": token, "expires_on": now() + 3600,
                                            "expiresOn": "2099-01-01 00:00:00.000000",
                                            "tokenType": "Bearer", "tenant": self.server.tenant})
                if path == "/msi/token" and method == "GET":
                    return self.managed_identity(urllib.parse.parse_qs(url.query))
                principal = Principal(PERMISSIONS)
                return self.vault(method, path, raw, principal)
            if re.fullmatch(r"/[^/]+/oauth2/v2\.0/token", path) and method == "POST":
                return self.token(path.split("/")[1], raw)
            if re.fullmatch(r"/[^/]+/v2\.0/\.well-known/openid-configuration", path):
                return self.openid(path.split("/")[1])
            if path == "/common/discovery/instance":
                return self.instance_discovery(urllib.parse.parse_qs(url.query))
            if not urllib.parse.parse_qs(url.query).get("api-version"):
                return self.vault_error(VaultError(400, "BadParameter",
                                                   "The 'api-version' query parameter is missing."))
            principal = self.authenticate()
            if principal is None:
                return
            self.vault(method, path, raw, principal)
        except Exception as e:  # noqa: BLE001 - the emulator answers 500 rather than dying
            traceback.print_exc()
            self.reply(500, {"error": {"code": "InternalError", "message": f"emulator error: {e}"}})

    # -- vault -----------------------------------------------------------------------------
    def vault(self, method, path, raw, principal):
        store = self.server.store
        fault = None
        with LOCK:
            for f in store.faults:
                if f.get("match", "\0") in path and path.endswith(f.get("suffix", "")) \
                        and f.get("count", 1) != 0:
                    if f.get("count", 1) > 0:
                        f["count"] = f.get("count", 1) - 1
                    fault = dict(f)
                    break
        kind = (fault or {}).get("kind", "status")
        if fault and kind == "status":
            status = int(fault.get("status", 429))
            headers = {}
            if fault.get("retry_after") is not None:
                headers["Retry-After"] = str(fault["retry_after"])
            code = fault.get("code") or {429: "Throttled", 500: "InternalServerError",
                                         503: "ServiceUnavailable"}.get(status, "Forbidden")
            message = fault.get("message") or (
                "Request was not processed because too many requests were received. "
                "Reason: VaultRequestTypeLimitReached" if status == 429 else f"injected {status}")
            return self.vault_error(VaultError(status, code, message, fault.get("inner"), headers))
        if fault and kind == "hang":
            time.sleep(3600)
            return None
        if fault and kind == "delay":
            time.sleep(float(fault.get("seconds", 1)))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.vault_error(VaultError(400, "BadParameter", "The request body is not valid JSON."))
        try:
            status, out = route(store, method, path, body, principal)
        except VaultError as e:
            return self.vault_error(e)
        if fault and kind in ("flip_signature", "der_signature") and isinstance(out, dict) \
                and isinstance(out.get("value"), str):
            out = dict(out, value=b64url(tamper_signature(unb64url(out["value"]), kind)))
        self.reply(status, out)

    def authenticate(self):
        auth = self.headers.get("Authorization") or ""
        tenant = self.server.tenant
        challenge = (f'Bearer authorization="https://login.microsoftonline.com/{tenant}", '
                     f'resource="{VAULT_SCOPE}"')
        if not auth.startswith("Bearer "):
            self.vault_error(VaultError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.",
                                        headers={"WWW-Authenticate": challenge}))
            return None
        with LOCK:
            principal = self.server.store.tokens.get(auth[len("Bearer "):].strip())
        if principal is None:
            self.vault_error(VaultError(401, "Unauthorized", "AKV10032: Invalid issuer or the token is expired.",
                                        headers={"WWW-Authenticate": challenge}))
            return None
        return principal

    # -- Entra -----------------------------------------------------------------------------
    def entra_error(self, status, error, description):
        self.reply(status, {"error": error, "error_description": description, "error_codes": [],
                            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                            "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())})

    def token(self, tenant, raw):
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        client_id = form.get("client_id", "")
        scope = form.get("scope", "")
        if form.get("grant_type") != "client_credentials":
            return self.entra_error(400, "unsupported_grant_type",
                                    "AADSTS70003: The app requested an unsupported grant type.")
        if not client_id:
            return self.entra_error(400, "invalid_request", "AADSTS900144: The request body must contain "
                                    "the following parameter: 'client_id'.")
        if "client_secret" in form:
            if form["client_secret"] != self.server.client_secret:
                return self.entra_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided. "
                                        "Ensure the secret being sent in the request is the client secret "
                                        f"value, not the client secret ID, for a secret added to app '{client_id}'.")
        elif "client_assertion" in form:
            try:
                payload = json.loads(unb64url(form["client_assertion"].split(".")[1]))
                aud = payload.get("aud")
                ok = "api://AzureADTokenExchange" in (aud if isinstance(aud, list) else [aud]) and \
                    form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            except Exception:  # noqa: BLE001 - not a JWT
                ok = False
            if not ok:
                return self.entra_error(400, "invalid_client", "AADSTS700211: No matching federated identity "
                                        "record found for presented assertion issuer.")
        else:
            return self.entra_error(401, "invalid_client", "AADSTS7000218: The request body must contain the "
                                    "following parameter: 'client_assertion' or 'client_secret'.")
        if scope.split() != [f"{VAULT_SCOPE}/.default"]:
            return self.entra_error(400, "invalid_scope", f"AADSTS70011: The provided value for scope {scope} "
                                    "is not valid for this emulator (only the Key Vault scope).")
        self.reply(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": self.issue_token(client_id)})

    def issue_token(self, client_id):
        """A Key Vault token for `client_id`; `deny-<perm>+<perm>` ids lack those permissions."""
        denied = set(client_id[len("deny-"):].split("+")) if client_id.startswith("deny-") else set()
        principal = Principal(p for p in PERMISSIONS if p not in denied)
        principal.client_id = client_id
        token = "kvemu." + b64url(os.urandom(24))
        with LOCK:
            self.server.store.tokens[token] = principal
        return token

    def managed_identity(self, query):
        """The App Service managed identity endpoint (IDENTITY_ENDPOINT, api-version 2019-08-01):
        X-IDENTITY-HEADER must be the emulator's client secret (IDENTITY_HEADER)."""
        if self.headers.get("X-IDENTITY-HEADER") != self.server.client_secret:
            return self.reply(401, {"statusCode": 401, "message": "Unauthorized: bad X-IDENTITY-HEADER"})
        resource = (query.get("resource") or [""])[0]
        if resource.rstrip("/") != VAULT_SCOPE:
            return self.reply(400, {"statusCode": 400, "message": f"resource {resource} is not Key Vault"})
        client_id = (query.get("client_id") or ["system-assigned-identity"])[0]
        self.reply(200, {"access_token": self.issue_token(client_id), "expires_on": str(now() + 3600),
                         "resource": resource, "token_type": "Bearer", "client_id": client_id})

    def openid(self, tenant):
        base = f"https://{self.headers.get('Host')}/{tenant}"
        self.reply(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                         "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                         "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                         "issuer": f"{base}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys",
                         "response_types_supported": ["code", "id_token", "token"],
                         "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"]})

    def instance_discovery(self, query):
        host = self.headers.get("Host")
        self.reply(200, {"tenant_discovery_endpoint":
                         f"https://{host}/{{tenant}}/v2.0/.well-known/openid-configuration",
                         "api-version": "1.1",
                         "metadata": [{"preferred_network": host, "preferred_cache": host,
                                       "aliases": [host]}]})


class AdminHandler(Handler):
    admin = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--admin-port", type=int, default=8480)
    ap.add_argument("--cert", required=True, help="server certificate chain (PEM)")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--vault-url", default="https://local.vault.azure.net")
    ap.add_argument("--tenant", default="72f988bf-0000-4000-8000-00000000abcd")
    ap.add_argument("--client-secret", default=os.environ.get("KV_EMULATOR_CLIENT_SECRET", ""))
    args = ap.parse_args()
    if not args.client_secret:
        ap.error("--client-secret (or KV_EMULATOR_CLIENT_SECRET) is required")
    store = Store(args.vault_url)

    https = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    https.socket = ctx.wrap_socket(https.socket, server_side=True, do_handshake_on_connect=False)
    admin = ThreadingHTTPServer(("127.0.0.1", args.admin_port), AdminHandler)
    for s in (https, admin):
        s.store, s.tenant, s.client_secret = store, args.tenant, args.client_secret
        s.daemon_threads = True
    threading.Thread(target=admin.serve_forever, daemon=True).start()
    print(f"kv-emulator: vault {args.vault_url} on 127.0.0.1:{args.port}, admin http://127.0.0.1:{args.admin_port}",
          file=sys.stderr, flush=True)
    https.serve_forever()


if __name__ == "__main__":
    main()
