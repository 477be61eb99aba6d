#!/usr/bin/env python3
"""A local Google Cloud KMS, Secret Manager and OAuth token endpoint, for tests only.

It implements exactly the parts of the REST APIs (v1) that notation-gcp-kms and Google's own
Python clients (conformance.py) use, on plain HTTP at 127.0.0.1 only:

* Cloud KMS: key rings (create, get), crypto keys (create with a version template, get),
  crypto key versions (create, get, list with paging, patch state, destroy, restore),
  getPublicKey (PEM and pemCrc32c; FAILED_PRECONDITION for versions that are not enabled or keys
  that are not asymmetric), asymmetricSign over a digest (digestCrc32c checked, signatureCrc32c
  and verifiedDigestCrc32c returned). Real keys (`cryptography`) for EC P-256/P-384/secp256k1,
  RSA-PSS 2048/3072/4096 and RSA PKCS#1 v1.5; symmetric, HMAC and post-quantum keys exist (so
  that they can be refused) but have no public key here.
* Secret Manager: secrets (create), versions (addVersion with dataCrc32c, access, `latest`).
* Auth: every API call needs `Authorization: Bearer <token>`, where the token is either a
  self-signed JWT of the emulator's service account (RS256, checked against its key: what
  Google's Rust and Python libraries send for service-account keys) or an access token from
  `POST /token` (OAuth 2.0 JWT-bearer grant with an assertion signed by that key, or the
  refresh-token grant of the emulator's authorized_user credentials) or from `POST /v1/token`
  (Google's STS token exchange for workload identity federation: a subject JWT whose `aud` is
  the pool provider). The credentials files are
  written to --state-dir at start. A missing or bad token is 401 UNAUTHENTICATED.
* Google's error body: `{"error": {"code", "message", "status", "details": [ErrorInfo]}}`.

Test helpers on the same port (no auth; 127.0.0.1 only):
* `GET /_admin/health`, `GET /_admin/token` (an access token);
* `POST /_admin/fault {"match": "<substring of the path>", "status": 403|429|503|..,
  "permission": "cloudkms.cryptoKeyVersions.useToSign", "count": n (-1: forever),
  "delay": seconds (slow, then answered normally unless status is set), "hang": true,
  "corrupt": "signature"|"pem"|"digest" (a wrong CRC32C in the answer)}`;
* `POST /_admin/state {"name": "<version name>", "state": "PENDING_GENERATION"|...}`.

State is in memory only.
"""

import argparse
import base64
import datetime
import json
import os
import re
import secrets
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

LOCK = threading.RLock()
PROJECT = "notation-emulator"
SA_EMAIL = f"signer@{PROJECT}.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"

# algorithm -> (purpose, kind, parameter, hash)
SIGN = "ASYMMETRIC_SIGN"
ALGORITHMS = {
    "EC_SIGN_P256_SHA256": (SIGN, "ec", ec.SECP256R1, hashes.SHA256),
    "EC_SIGN_P384_SHA384": (SIGN, "ec", ec.SECP384R1, hashes.SHA384),
    "EC_SIGN_SECP256K1_SHA256": (SIGN, "ec", ec.SECP256K1, hashes.SHA256),
    "RSA_SIGN_PSS_2048_SHA256": (SIGN, "pss", 2048, hashes.SHA256),
    "RSA_SIGN_PSS_3072_SHA256": (SIGN, "pss", 3072, hashes.SHA256),
    "RSA_SIGN_PSS_4096_SHA256": (SIGN, "pss", 4096, hashes.SHA256),
    "RSA_SIGN_PSS_4096_SHA512": (SIGN, "pss", 4096, hashes.SHA512),
    "RSA_SIGN_PKCS1_2048_SHA256": (SIGN, "pkcs1", 2048, hashes.SHA256),
    "RSA_SIGN_PKCS1_3072_SHA256": (SIGN, "pkcs1", 3072, hashes.SHA256),
    "RSA_SIGN_PKCS1_4096_SHA256": (SIGN, "pkcs1", 4096, hashes.SHA256),
    "RSA_SIGN_PKCS1_4096_SHA512": (SIGN, "pkcs1", 4096, hashes.SHA512),
    "RSA_SIGN_RAW_PKCS1_2048": (SIGN, "raw", 2048, None),
    "RSA_SIGN_RAW_PKCS1_3072": (SIGN, "raw", 3072, None),
    "RSA_SIGN_RAW_PKCS1_4096": (SIGN, "raw", 4096, None),
    "PQ_SIGN_ML_DSA_65": (SIGN, "pq", None, None),
    "PQ_SIGN_SLH_DSA_SHA2_128S": (SIGN, "pq", None, None),
    "GOOGLE_SYMMETRIC_ENCRYPTION": ("ENCRYPT_DECRYPT", "symmetric", None, None),
    "HMAC_SHA256": ("MAC", "symmetric", None, None),
}
DIGESTS = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
# The proto enum numbers (google/cloud/kms/v1/resources.proto), for clients that ask for
# `$alt=json;enum-encoding=int` (Google's Python REST transport) or send numbers.
ENUMS = {
    "algorithm": {
        "GOOGLE_SYMMETRIC_ENCRYPTION": 1, "RSA_SIGN_PSS_2048_SHA256": 2,
        "RSA_SIGN_PSS_3072_SHA256": 3, "RSA_SIGN_PSS_4096_SHA256": 4,
        "RSA_SIGN_PSS_4096_SHA512": 15, "RSA_SIGN_PKCS1_2048_SHA256": 5,
        "RSA_SIGN_PKCS1_3072_SHA256": 6, "RSA_SIGN_PKCS1_4096_SHA256": 7,
        "RSA_SIGN_PKCS1_4096_SHA512": 16, "RSA_SIGN_RAW_PKCS1_2048": 28,
        "RSA_SIGN_RAW_PKCS1_3072": 29, "RSA_SIGN_RAW_PKCS1_4096": 30, "EC_SIGN_P256_SHA256": 12,
        "EC_SIGN_P384_SHA384": 13, "EC_SIGN_SECP256K1_SHA256": 31, "HMAC_SHA256": 32,
        "PQ_SIGN_ML_DSA_65": 56, "PQ_SIGN_SLH_DSA_SHA2_128S": 57},
    "state": {"PENDING_GENERATION": 5, "ENABLED": 1, "DISABLED": 2, "DESTROYED": 3,
              "DESTROY_SCHEDULED": 4, "PENDING_IMPORT": 6, "IMPORT_FAILED": 7,
              "GENERATION_FAILED": 8},
    "protectionLevel": {"SOFTWARE": 1, "HSM": 2, "EXTERNAL": 3, "EXTERNAL_VPC": 4},
    "purpose": {"ENCRYPT_DECRYPT": 1, "ASYMMETRIC_SIGN": 5, "ASYMMETRIC_DECRYPT": 6, "MAC": 9},
}
ENUM_NAMES = {field: {n: name for name, n in table.items()} for field, table in ENUMS.items()}


def enums(value, to_int):
    """`value` with the enum fields as numbers (to_int) or as names (from either)."""
    if isinstance(value, list):
        return [enums(v, to_int) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if k in ENUMS and isinstance(v, (str, int)) and not isinstance(v, bool):
            if to_int:
                v = ENUMS[k].get(v, v) if isinstance(v, str) else v
            elif isinstance(v, int) or (isinstance(v, str) and v.isdigit()):
                v = ENUM_NAMES[k].get(int(v), str(v))
        out[k] = enums(v, to_int)
    return out


STATES = ("PENDING_GENERATION", "ENABLED", "DISABLED", "DESTROYED", "DESTROY_SCHEDULED",
          "PENDING_IMPORT", "IMPORT_FAILED", "GENERATION_FAILED")


def crc32c(data):
    """CRC-32C (Castagnoli), bitwise: the emulator must not depend on the code it checks."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    text = text.strip()
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except Exception:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def timestamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ApiError(Exception):
    STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
              404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
              500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

    def __init__(self, http_status, message, status=None, details=None):
        super().__init__(message)
        self.http_status = http_status
        self.status = status or self.STATUS.get(http_status, "UNKNOWN")
        self.message = message
        self.details = details or []

    def body(self):
        return {"error": {"code": self.http_status, "message": self.message,
                          "status": self.status, "details": self.details}}


def permission_denied(permission, resource, domain="cloudkms.googleapis.com"):
    return ApiError(
        403, f"Permission '{permission}' denied on resource '{resource}' (or it may not exist).",
        details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                  "reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                  "metadata": {"permission": permission, "resource": resource}}])


def not_enabled(name, state):
    return ApiError(400, f"The request cannot be fulfilled. CryptoKeyVersion {name} is not "
                         f"enabled, current state is: {state}.", status="FAILED_PRECONDITION")


class Store:
    def __init__(self):
        self.rings, self.keys, self.versions, self.secrets = {}, {}, {}, {}
        self.faults = []
        self.tokens = set()

    # -- KMS -------------------------------------------------------------------------------
    def create_ring(self, parent, ring_id):
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,63}", ring_id or ""):
            raise ApiError(400, f"Invalid key ring id '{ring_id}'.")
        name = f"{parent}/keyRings/{ring_id}"
        if name in self.rings:
            raise ApiError(409, f"KeyRing {name} already exists.")
        self.rings[name] = {"name": name, "createTime": timestamp()}
        return self.rings[name]

    def ring(self, name):
        if name not in self.rings:
            raise ApiError(404, f"KeyRing {name} not found.")
        return self.rings[name]

    def create_key(self, parent, key_id, body, skip_version):
        if parent not in self.rings:
            raise ApiError(404, f"KeyRing {parent} not found.")
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,63}", key_id or ""):
            raise ApiError(400, f"Invalid crypto key id '{key_id}'.")
        name = f"{parent}/cryptoKeys/{key_id}"
        if name in self.keys:
            raise ApiError(409, f"CryptoKey {name} already exists.")
        purpose = body.get("purpose", "ENCRYPT_DECRYPT")
        template = body.get("versionTemplate") or {}
        algorithm = template.get("algorithm") or (
            "GOOGLE_SYMMETRIC_ENCRYPTION" if purpose == "ENCRYPT_DECRYPT" else None)
        if algorithm not in ALGORITHMS:
            raise ApiError(400, f"Unsupported algorithm '{algorithm}'.")
        if ALGORITHMS[algorithm][0] != purpose:
            raise ApiError(400, f"Algorithm {algorithm} is not valid for purpose {purpose}.")
        key = {"name": name, "purpose": purpose, "createTime": timestamp(),
               "versionTemplate": {"algorithm": algorithm,
                                   "protectionLevel": template.get("protectionLevel", "SOFTWARE")},
               "destroyScheduledDuration": "86400s", "next": 1}
        self.keys[name] = key
        if not skip_version:
            self.create_version(name)
        return self.public_key_resource(key)

    def public_key_resource(self, key):
        out = {k: v for k, v in key.items() if k != "next"}
        if key["purpose"] == "ENCRYPT_DECRYPT":
            primary = [v for n, v in self.versions.items() if n.startswith(key["name"] + "/")]
            if primary:
                out["primary"] = self.version_resource(primary[0])
        return out

    def key(self, name):
        key = self.keys.get(name)
        if key is None:
            raise ApiError(404, f"CryptoKey {name} not found.")
        return key

    def create_version(self, key_name):
        key = self.key(key_name)
        algorithm = key["versionTemplate"]["algorithm"]
        _, kind, param, _ = ALGORITHMS[algorithm]
        if kind == "ec":
            private = ec.generate_private_key(param())
        elif kind in ("pss", "pkcs1", "raw"):
            private = rsa.generate_private_key(public_exponent=65537, key_size=param)
        else:
            private = None
        number = key["next"]
        key["next"] += 1
        name = f"{key_name}/cryptoKeyVersions/{number}"
        self.versions[name] = {"name": name, "state": "ENABLED", "algorithm": algorithm,
                               "protectionLevel": key["versionTemplate"]["protectionLevel"],
                               "createTime": timestamp(), "generateTime": timestamp(),
                               "private": private}
        return self.version_resource(self.versions[name])

    @staticmethod
    def version_resource(v):
        return {k: val for k, val in v.items() if k != "private"}

    def version(self, name):
        v = self.versions.get(name)
        if v is None:
            raise ApiError(404, f"CryptoKeyVersion {name} not found.")
        return v

    def list_versions(self, parent, page_size, page_token, filt):
        self.key(parent)
        names = sorted((n for n in self.versions if n.startswith(parent + "/")),
                       key=lambda n: int(n.rsplit("/", 1)[1]))
        items = [self.versions[n] for n in names]
        if filt:
            m = re.fullmatch(r"\s*state\s*=\s*([A-Z_0-9]+)\s*", filt)
            if not m:
                raise ApiError(400, f"Invalid filter '{filt}'.")
            items = [v for v in items if v["state"] == m.group(1)
                     or str(ENUMS["state"].get(v["state"])) == m.group(1)]
        start = int(page_token or 0)
        size = page_size or 100
        page = items[start:start + size]
        out = {"cryptoKeyVersions": [self.version_resource(v) for v in page],
               "totalSize": len(items)}
        if start + size < len(items):
            out["nextPageToken"] = str(start + size)
        return out

    def set_state(self, name, state):
        v = self.version(name)
        if state not in STATES:
            raise ApiError(400, f"Invalid state '{state}'.")
        v["state"] = state
        if state == "DESTROY_SCHEDULED":
            v["destroyTime"] = timestamp()
        return self.version_resource(v)

    def patch_version(self, name, body, mask):
        v = self.version(name)
        if "state" not in (mask or "").split(","):
            raise ApiError(400, "update_mask must name 'state'.")
        state = body.get("state")
        if state not in ("ENABLED", "DISABLED"):
            raise ApiError(400, f"A CryptoKeyVersion can only be set to ENABLED or DISABLED, not {state}.")
        if v["state"] not in ("ENABLED", "DISABLED"):
            raise ApiError(400, f"CryptoKeyVersion {name} is in state {v['state']}.",
                           status="FAILED_PRECONDITION")
        return self.set_state(name, state)

    def destroy(self, name):
        v = self.version(name)
        if v["state"] not in ("ENABLED", "DISABLED"):
            raise ApiError(400, f"CryptoKeyVersion {name} is in state {v['state']}.",
                           status="FAILED_PRECONDITION")
        return self.set_state(name, "DESTROY_SCHEDULED")

    def restore(self, name):
        v = self.version(name)
        if v["state"] != "DESTROY_SCHEDULED":
            raise ApiError(400, f"CryptoKeyVersion {name} is not scheduled for destruction.",
                           status="FAILED_PRECONDITION")
        v.pop("destroyTime", None)
        return self.set_state(name, "DISABLED")

    def usable_asymmetric(self, name):
        v = self.version(name)
        purpose, kind, _, _ = ALGORITHMS[v["algorithm"]]
        if purpose not in (SIGN,):
            raise ApiError(400, f"The request cannot be fulfilled. CryptoKey "
                                f"{name.rsplit('/cryptoKeyVersions/', 1)[0]} has purpose "
                                f"{purpose}, which is not asymmetric.",
                           status="FAILED_PRECONDITION")
        if v["state"] != "ENABLED":
            raise not_enabled(name, v["state"])
        return v, kind

    def public_key(self, name, fmt, corrupt):
        v, kind = self.usable_asymmetric(name)
        if kind == "pq":
            if fmt != "NIST_PQC":
                raise ApiError(400, f"CryptoKeyVersion {name} has algorithm {v['algorithm']}; "
                                    "its public key is only available with public_key_format "
                                    "NIST_PQC.")
            raise ApiError(501, "NIST_PQC public keys are not implemented by this emulator.",
                           status="UNIMPLEMENTED")
        pem = v["private"].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        crc = crc32c(pem.encode())
        if corrupt == "pem":
            crc ^= 1
        return {"pem": pem, "algorithm": v["algorithm"], "pemCrc32c": str(crc), "name": name,
                "protectionLevel": v["protectionLevel"]}

    def sign(self, name, body, corrupt):
        v, kind = self.usable_asymmetric(name)
        _, _, _, hash_cls = ALGORITHMS[v["algorithm"]]
        digest = body.get("digest") or {}
        if kind in ("raw", "pq") or not digest:
            raise ApiError(400, f"CryptoKeyVersion {name} with algorithm {v['algorithm']} "
                                "signs data, not a digest; this emulator signs digests only.")
        (field, value), = digest.items()
        if DIGESTS.get(field) is not hash_cls:
            raise ApiError(400, f"The digest type {field} does not match the algorithm "
                                f"{v['algorithm']}.")
        data = unb64(value)
        if len(data) != hash_cls.digest_size:
            raise ApiError(400, f"Digest must be {hash_cls.digest_size} bytes, not {len(data)}.")
        verified = False
        if body.get("digestCrc32c") is not None:
            sent = int(body["digestCrc32c"])
            if corrupt == "digest":
                sent ^= 1
            if sent != crc32c(data):
                raise ApiError(400, "The checksum in field digest_crc32c did not match the data "
                                    "in field digest.")
            verified = True
        prehashed = utils.Prehashed(hash_cls())
        private = v["private"]
        if kind == "ec":
            signature = private.sign(data, ec.ECDSA(prehashed))
        elif kind == "pss":
            signature = private.sign(data, padding.PSS(mgf=padding.MGF1(hash_cls()),
                                                       salt_length=hash_cls.digest_size), prehashed)
        else:
            signature = private.sign(data, padding.PKCS1v15(), prehashed)
        crc = crc32c(signature)
        if corrupt == "signature":
            crc ^= 1
        return {"signature": b64(signature), "signatureCrc32c": str(crc),
                "verifiedDigestCrc32c": verified, "name": name,
                "protectionLevel": v["protectionLevel"]}

    # -- Secret Manager ---------------------------------------------------------------------
    def create_secret(self, parent, secret_id, body):
        name = f"{parent}/secrets/{secret_id}"
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,255}", secret_id or ""):
            raise ApiError(400, f"Invalid secret id '{secret_id}'.")
        if name in self.secrets:
            raise ApiError(409, f"Secret [{name}] already exists.")
        self.secrets[name] = {"name": name, "createTime": timestamp(),
                              "replication": body.get("replication") or {"automatic": {}},
                              "versions": []}
        return {k: v for k, v in self.secrets[name].items() if k != "versions"}

    def add_version(self, secret, body):
        s = self.secrets.get(secret)
        if s is None:
            raise ApiError(404, f"Secret [{secret}] not found or has no versions.")
        payload = body.get("payload") or {}
        data = unb64(payload.get("data", ""))
        if payload.get("dataCrc32c") is not None and int(payload["dataCrc32c"]) != crc32c(data):
            raise ApiError(400, "Checksum mismatch: data_crc32c does not match the data.")
        s["versions"].append(data)
        name = f"{secret}/versions/{len(s['versions'])}"
        return {"name": name, "createTime": timestamp(), "state": "ENABLED",
                "clientSpecifiedPayloadChecksum": payload.get("dataCrc32c") is not None}

    def access(self, name):
        m = re.fullmatch(r"(projects/[^/]+(?:/locations/[^/]+)?/secrets/[^/]+)/versions/([^/]+)", name)
        s = self.secrets.get(m.group(1)) if m else None
        if s is None or not s["versions"]:
            raise ApiError(404, f"Secret [{m.group(1) if m else name}] not found or has no versions.")
        number = len(s["versions"]) if m.group(2) == "latest" else int(m.group(2))
        if not 1 <= number <= len(s["versions"]):
            raise ApiError(404, f"Secret Version [{name}] not found.")
        data = s["versions"][number - 1]
        return {"name": f"{m.group(1)}/versions/{number}",
                "payload": {"data": b64(data), "dataCrc32c": str(crc32c(data))}}


class Auth:
    """The emulator's service account and authorized user, and the tokens it accepts."""

    def __init__(self, state_dir, base_url):
        self.base_url = base_url
        os.makedirs(state_dir, exist_ok=True)
        key_path = os.path.join(state_dir, "service-account-key.pem")
        if os.path.exists(key_path):
            with open(key_path, "rb") as f:
                self.private = serialization.load_pem_private_key(f.read(), None)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(self.private.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
        self.key_id = format(crc32c(self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)), "08x")
        secret_path = os.path.join(state_dir, "refresh-token")
        if not os.path.exists(secret_path):
            with open(os.open(secret_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
                f.write(secrets.token_urlsafe(24))
        with open(secret_path) as f:
            self.refresh_token = f.read().strip()
        self.tokens = set()
        self.write_files(state_dir)

    def write_files(self, state_dir):
        pem = self.private.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode()
        sa = {"type": "service_account", "project_id": PROJECT, "private_key_id": self.key_id,
              "private_key": pem, "client_email": SA_EMAIL, "client_id": "1000000000000000001",
              "auth_uri": f"{self.base_url}/auth", "token_uri": f"{self.base_url}/token",
              "universe_domain": "googleapis.com"}
        user = {"type": "authorized_user", "client_id": "notation-emulator.apps",
                "client_secret": "emulator-client-secret", "refresh_token": self.refresh_token,
                "token_uri": f"{self.base_url}/token", "quota_project_id": PROJECT}
        for name, content in (("service-account.json", sa), ("authorized-user.json", user)):
            path = os.path.join(state_dir, name)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                json.dump(content, f, indent=2)

    def new_token(self):
        token = "emu." + secrets.token_urlsafe(24)
        with LOCK:
            self.tokens.add(token)
        return token

    def check_jwt(self, jwt, audiences):
        """A JWT signed by the service account's key: its claims, or an error string."""
        try:
            head_b64, claims_b64, sig_b64 = jwt.split(".")
            head = json.loads(unb64(head_b64.replace("-", "+").replace("_", "/")))
            claims = json.loads(unb64(claims_b64.replace("-", "+").replace("_", "/")))
            sig = unb64(sig_b64.replace("-", "+").replace("_", "/"))
        except Exception:
            return None, "the token is not a JWT"
        if head.get("alg") != "RS256":
            return None, f"unsupported JWT alg {head.get('alg')}"
        try:
            self.private.public_key().verify(sig, f"{head_b64}.{claims_b64}".encode(),
                                             padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return None, "the JWT signature does not verify with the service account's key"
        if claims.get("iss") != SA_EMAIL:
            return None, f"unknown issuer {claims.get('iss')}"
        now = time.time()
        if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0) + 300):
            return None, "the JWT is expired or not yet valid"
        aud = claims.get("aud")
        scope = claims.get("scope", "")
        if not ((aud and any(str(aud).startswith(a) for a in audiences)) or SCOPE in scope.split()):
            return None, f"the JWT has neither an accepted audience nor the {SCOPE} scope"
        return claims, None

    def check_bearer(self, header):
        if not header or not header.startswith("Bearer "):
            raise ApiError(401, "Request is missing required authentication credential. Expected "
                                "OAuth 2 access token, login cookie or other valid authentication "
                                "credential.")
        token = header[len("Bearer "):].strip()
        with LOCK:
            if token in self.tokens:
                return
        _, err = self.check_jwt(token, ("https://cloudkms.googleapis.com",
                                        "https://secretmanager.googleapis.com", self.base_url))
        if err:
            raise ApiError(401, f"Request had invalid authentication credentials: {err}.")

    def sts_exchange(self, form):
        """RFC 8693 token exchange as Google's STS does it for workload identity federation: the
        subject token must be a JWT (an OIDC token from GitHub Actions, GitLab CI, Kubernetes)
        whose `aud` names the pool provider; its signature is not checked (a test STS)."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange":
            return 400, {"error": "invalid_grant", "error_description": "unsupported grant_type"}
        audience = form.get("audience", "")
        if not audience.startswith("//iam.googleapis.com/"):
            return 400, {"error": "invalid_target", "error_description": f"bad audience {audience}"}
        try:
            part = form.get("subject_token", "").split(".")[1]
            claims = json.loads(unb64(part.replace("-", "+").replace("_", "/")))
        except Exception:
            return 400, {"error": "invalid_grant", "error_description": "the subject token is not a JWT"}
        auds = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        if not any(a and (a == audience or a == "https:" + audience) for a in auds):
            return 400, {"error": "invalid_grant",
                         "error_description": f"the subject token's aud {auds} does not match {audience}"}
        return 200, {"access_token": self.new_token(),
                     "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                     "token_type": "Bearer", "expires_in": 3599}

    def token_grant(self, form):
        grant = form.get("grant_type")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            _, err = self.check_jwt(form.get("assertion", ""), (f"{self.base_url}/token",
                                                                 "https://oauth2.googleapis.com"))
            if err:
                return 400, {"error": "invalid_grant", "error_description": err}
        elif grant == "refresh_token":
            if form.get("refresh_token") != self.refresh_token:
                return 400, {"error": "invalid_grant", "error_description": "Bad Request"}
        else:
            return 400, {"error": "unsupported_grant_type", "error_description": str(grant)}
        return 200, {"access_token": self.new_token(), "expires_in": 3599,
                     "token_type": "Bearer", "scope": SCOPE}


STORE = Store()
AUTH = None

KMS_V = r"(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+/cryptoKeyVersions/[^/:]+)"
KMS_K = r"(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/:]+)"
KMS_R = r"(projects/[^/]+/locations/[^/]+/keyRings/[^/:]+)"
KMS_L = r"(projects/[^/]+/locations/[^/:]+)"
SM_S = r"(projects/[^/]+(?:/locations/[^/]+)?/secrets/[^/:]+)"
SM_P = r"(projects/[^/]+(?:/locations/[^/]+)?)"

# (method, pattern, permission, handler(match, query, body, corrupt))
ROUTES = [
    ("POST", KMS_L + "/keyRings", "cloudkms.keyRings.create",
     lambda m, q, b, c: STORE.create_ring(m.group(1), q.get("keyRingId"))),
    ("GET", KMS_R, "cloudkms.keyRings.get",
     lambda m, q, b, c: STORE.ring(m.group(1))),
    ("POST", KMS_R + "/cryptoKeys", "cloudkms.cryptoKeys.create",
     lambda m, q, b, c: STORE.create_key(m.group(1), q.get("cryptoKeyId"), b,
                                         q.get("skipInitialVersionCreation") == "true")),
    ("GET", KMS_K, "cloudkms.cryptoKeys.get",
     lambda m, q, b, c: STORE.public_key_resource(STORE.key(m.group(1)))),
    ("POST", KMS_K + "/cryptoKeyVersions", "cloudkms.cryptoKeyVersions.create",
     lambda m, q, b, c: STORE.create_version(m.group(1))),
    ("GET", KMS_K + "/cryptoKeyVersions", "cloudkms.cryptoKeyVersions.list",
     lambda m, q, b, c: STORE.list_versions(m.group(1), int(q.get("pageSize") or 0),
                                            q.get("pageToken"), q.get("filter"))),
    ("GET", KMS_V + "/publicKey", "cloudkms.cryptoKeyVersions.viewPublicKey",
     lambda m, q, b, c: STORE.public_key(m.group(1), q.get("publicKeyFormat"), c)),
    ("POST", KMS_V + ":asymmetricSign", "cloudkms.cryptoKeyVersions.useToSign",
     lambda m, q, b, c: STORE.sign(m.group(1), b, c)),
    ("POST", KMS_V + ":destroy", "cloudkms.cryptoKeyVersions.destroy",
     lambda m, q, b, c: STORE.destroy(m.group(1))),
    ("POST", KMS_V + ":restore", "cloudkms.cryptoKeyVersions.restore",
     lambda m, q, b, c: STORE.restore(m.group(1))),
    ("PATCH", KMS_V, "cloudkms.cryptoKeyVersions.update",
     lambda m, q, b, c: STORE.patch_version(m.group(1), b, q.get("updateMask"))),
    ("GET", KMS_V, "cloudkms.cryptoKeyVersions.get",
     lambda m, q, b, c: STORE.version_resource(STORE.version(m.group(1)))),
    ("POST", SM_P + "/secrets", "secretmanager.secrets.create",
     lambda m, q, b, c: STORE.create_secret(m.group(1), q.get("secretId"), b)),
    ("POST", SM_S + ":addVersion", "secretmanager.versions.add",
     lambda m, q, b, c: STORE.add_version(m.group(1), b)),
    ("GET", SM_S + r"/versions/[^/:]+:access", "secretmanager.versions.access",
     lambda m, q, b, c: STORE.access(m.group(0)[:-len(":access")])),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcpkms-emulator"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def reply(self, status, body, content_type="application/json"):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def dispatch(self, method):
        try:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            if length > 1 << 20:
                raise ApiError(400, "Request body too large.")
            raw = self.rfile.read(length) if length else b""
            path = urllib.parse.unquote(url.path)
            if path.startswith("/_admin/"):
                return self.admin(method, path, raw)
            if path == "/v1/token" and method == "POST":
                # Google's Security Token Service (workload identity federation).
                status, body = AUTH.sts_exchange(dict(urllib.parse.parse_qsl(raw.decode())))
                return self.reply(status, body)
            if path == "/token" and method == "POST":
                if "json" in (self.headers.get("Content-Type") or ""):
                    form = json.loads(raw or b"{}")
                else:
                    form = dict(urllib.parse.parse_qsl(raw.decode()))
                status, body = AUTH.token_grant(form)
                return self.reply(status, body)
            if not path.startswith("/v1/"):
                raise ApiError(404, f"No such API: {method} {path}", status="NOT_FOUND")
            body = enums(json.loads(raw) if raw.strip() else {}, False)
            int_enums = "enum-encoding=int" in query.get("$alt", "")
            resource = path[len("/v1/"):]
            for m, pattern, permission, handler in ROUTES:
                match = re.fullmatch(pattern, resource)
                if m != method or not match:
                    continue
                AUTH.check_bearer(self.headers.get("Authorization"))
                corrupt = self.apply_faults(path, permission, match.group(1))
                with LOCK:
                    result = handler(match, query, body, corrupt)
                return self.reply(200, enums(result, int_enums))
            raise ApiError(404, f"No such API: {method} {path}", status="NOT_FOUND")
        except ApiError as e:
            self.reply(e.http_status, e.body())
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as e:  # an emulator bug: say so, as Google would with INTERNAL
            traceback.print_exc()
            self.reply(500, ApiError(500, f"emulator error: {e}").body())

    def apply_faults(self, path, permission, resource):
        """The first matching fault: raises its error, sleeps, hangs or returns `corrupt`."""
        with LOCK:
            fault = next((f for f in STORE.faults if f["match"] in path), None)
            if fault is None:
                return None
            if fault.get("count", 1) > 0:
                fault["count"] = fault.get("count", 1) - 1
                if fault["count"] == 0:
                    STORE.faults.remove(fault)
        if fault.get("hang"):
            time.sleep(3600)
        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        status = fault.get("status")
        if status == 403:
            domain = "secretmanager.googleapis.com" if "secrets" in path else "cloudkms.googleapis.com"
            raise permission_denied(fault.get("permission") or permission, resource, domain)
        if status == 429:
            raise ApiError(429, "Quota exceeded for quota metric 'Cryptographic requests' and "
                                "limit 'Cryptographic requests per minute' of service "
                                "'cloudkms.googleapis.com'.",
                           details=[{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                     "reason": "RATE_LIMIT_EXCEEDED",
                                     "domain": "googleapis.com", "metadata": {}}])
        if status == 503:
            raise ApiError(503, "The service is currently unavailable.")
        if status:
            raise ApiError(int(status), fault.get("message") or f"injected fault {status}")
        return fault.get("corrupt")

    def admin(self, method, path, raw):
        if path == "/_admin/health":
            return self.reply(200, {"ok": True})
        if path == "/_admin/token":
            return self.reply(200, {"access_token": AUTH.new_token()})
        body = json.loads(raw) if raw.strip() else {}
        if path == "/_admin/fault" and method == "POST":
            if "match" not in body:
                raise ApiError(400, "a fault needs 'match'")
            with LOCK:
                STORE.faults.append(body)
            return self.reply(200, {"faults": len(STORE.faults)})
        if path == "/_admin/state" and method == "POST":
            with LOCK:
                return self.reply(200, STORE.set_state(body["name"], body["state"]))
        raise ApiError(404, f"No such admin call: {method} {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8490)
    parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    global AUTH
    base_url = f"http://127.0.0.1:{args.port}"
    AUTH = Auth(args.state_dir, base_url)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"gcpkms-emulator listening on {base_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
