#!/usr/bin/env python3
"""Keeps the Cloud KMS emulator honest: drives it with Google's own Python clients
(google-cloud-kms with the REST transport, google-cloud-secret-manager; pinned in
scripts/gcpkms-emulator.sh) authenticated with the emulator's service-account key file, exactly
as an application would talk to Cloud KMS, and checks what Google documents:

* key rings, keys of every algorithm the plugin supports or refuses, versions (create, get,
  list with paging, disable, destroy, restore);
* getPublicKey's PEM against pemCrc32c (google-crc32c), asymmetricSign over a digest with
  digestCrc32c, the answer's verifiedDigestCrc32c, name and signatureCrc32c, and every signature
  verified with the public key (cryptography);
* Secret Manager secrets: create, addVersion with dataCrc32c, access (also `latest`);
* the exceptions the clients raise for the emulator's faults (403 naming a permission, 429, 503,
  FAILED_PRECONDITION for a disabled version, NOT_FOUND, 401 without credentials).

Prints one line per check and "N passed, M failed"; exits 1 on any failure.
"""

import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid

import google_crc32c
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.exceptions import RefreshError
from google.cloud import kms, secretmanager
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

URL = os.environ["GCPKMS_EMULATOR_URL"]
PROJECT = os.environ["GCPKMS_EMULATOR_PROJECT"]
CREDS = service_account.Credentials.from_service_account_file(
    os.environ["GCPKMS_EMULATOR_SERVICE_ACCOUNT"],
    scopes=["https://www.googleapis.com/auth/cloud-platform"])
OPTIONS = ClientOptions(api_endpoint=URL)
KMS = kms.KeyManagementServiceClient(credentials=CREDS, transport="rest", client_options=OPTIONS)
SM = secretmanager.SecretManagerServiceClient(credentials=CREDS, transport="rest",
                                              client_options=OPTIONS)
A = kms.CryptoKeyVersion.CryptoKeyVersionAlgorithm
SIGNING = {
    "EC_SIGN_P256_SHA256": ("ec", hashes.SHA256),
    "EC_SIGN_P384_SHA384": ("ec", hashes.SHA384),
    "EC_SIGN_SECP256K1_SHA256": ("ec", hashes.SHA256),
    "RSA_SIGN_PSS_2048_SHA256": ("pss", hashes.SHA256),
    "RSA_SIGN_PSS_3072_SHA256": ("pss", hashes.SHA256),
    "RSA_SIGN_PSS_4096_SHA256": ("pss", hashes.SHA256),
    "RSA_SIGN_PSS_4096_SHA512": ("pss", hashes.SHA512),
    "RSA_SIGN_PKCS1_2048_SHA256": ("pkcs1", hashes.SHA256),
}
RESULTS = []


def check(name):
    def wrap(fn):
        try:
            fn()
            RESULTS.append((name, None))
            print(f"ok   {name}", flush=True)
        except Exception:
            RESULTS.append((name, traceback.format_exc()))
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
        return fn
    return wrap


def crc(data):
    return int(google_crc32c.Checksum(data).hexdigest(), 16)


def fault(**body):
    req = urllib.request.Request(f"{URL}/_admin/fault", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def ring():
    parent = f"projects/{PROJECT}/locations/us-east1"
    r = KMS.create_key_ring(request={"parent": parent, "key_ring_id": f"conf-{uuid.uuid4().hex[:12]}",
                                     "key_ring": {}})
    assert r.name.startswith(parent + "/keyRings/conf-"), r.name
    assert KMS.get_key_ring(name=r.name).name == r.name
    return r.name


RING = None


def signing_key(algorithm):
    key = KMS.create_crypto_key(request={
        "parent": RING, "crypto_key_id": f"k-{uuid.uuid4().hex[:12]}",
        "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN,
                       "version_template": {"algorithm": A[algorithm]}}})
    assert key.purpose == kms.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN
    assert key.version_template.algorithm == A[algorithm]
    return key


def sign_and_verify(version_name, algorithm):
    kind, hash_cls = SIGNING[algorithm]
    pk = KMS.get_public_key(request={"name": version_name})
    assert pk.name == version_name
    assert pk.algorithm == A[algorithm], pk.algorithm
    assert pk.pem_crc32c == crc(pk.pem.encode()), "pemCrc32c"
    public = serialization.load_pem_public_key(pk.pem.encode())
    h = hashes.Hash(hash_cls())
    h.update(b"conformance payload " + algorithm.encode())
    digest = h.finalize()
    field = hash_cls.name  # sha256 / sha384 / sha512
    resp = KMS.asymmetric_sign(request={"name": version_name, "digest": {field: digest},
                                        "digest_crc32c": crc(digest)})
    assert resp.verified_digest_crc32c, "verifiedDigestCrc32c"
    assert resp.name == version_name
    assert resp.signature_crc32c == crc(resp.signature), "signatureCrc32c"
    prehashed = utils.Prehashed(hash_cls())
    if kind == "ec":
        public.verify(resp.signature, digest, ec.ECDSA(prehashed))
    elif kind == "pss":
        public.verify(resp.signature, digest,
                      padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_cls.digest_size),
                      prehashed)
    else:
        public.verify(resp.signature, digest, padding.PKCS1v15(), prehashed)


def main():
    global RING

    @check("key ring create and get")
    def _():
        global RING
        RING = ring()

    for algorithm in SIGNING:
        @check(f"{algorithm}: create, getPublicKey (pemCrc32c), asymmetricSign (CRC32C), verify")
        def _(algorithm=algorithm):
            key = signing_key(algorithm)
            sign_and_verify(f"{key.name}/cryptoKeyVersions/1", algorithm)

    for algorithm, purpose in [("GOOGLE_SYMMETRIC_ENCRYPTION", "ENCRYPT_DECRYPT"),
                               ("HMAC_SHA256", "MAC"), ("PQ_SIGN_ML_DSA_65", "ASYMMETRIC_SIGN"),
                               ("RSA_SIGN_RAW_PKCS1_2048", "ASYMMETRIC_SIGN")]:
        @check(f"{algorithm}: created, no PEM public key / digest signature")
        def _(algorithm=algorithm, purpose=purpose):
            key = KMS.create_crypto_key(request={
                "parent": RING, "crypto_key_id": f"k-{uuid.uuid4().hex[:12]}",
                "crypto_key": {"purpose": kms.CryptoKey.CryptoKeyPurpose[purpose],
                               "version_template": {"algorithm": A[algorithm]}}})
            v = KMS.get_crypto_key_version(name=f"{key.name}/cryptoKeyVersions/1")
            assert v.algorithm == A[algorithm] and v.state == v.CryptoKeyVersionState.ENABLED
            try:
                pk = KMS.get_public_key(request={"name": v.name})
                KMS.asymmetric_sign(request={"name": v.name, "digest": {"sha256": b"\0" * 32}})
                raise AssertionError(f"{algorithm} gave a public key {pk.pem[:30]} and a signature")
            except exceptions.BadRequest as e:  # FAILED_PRECONDITION / INVALID_ARGUMENT
                assert e.response.json()["error"]["status"] in ("FAILED_PRECONDITION",
                                                                "INVALID_ARGUMENT")

    @check("versions: create, list with paging, disable, destroy, restore")
    def _():
        key = signing_key("EC_SIGN_P256_SHA256")
        for _ in range(4):
            KMS.create_crypto_key_version(parent=key.name, crypto_key_version={})
        names = [v.name for v in KMS.list_crypto_key_versions(
            request={"parent": key.name, "page_size": 2})]
        assert names == [f"{key.name}/cryptoKeyVersions/{i}" for i in range(1, 6)], names
        enabled = list(KMS.list_crypto_key_versions(
            request={"parent": key.name, "filter": "state=ENABLED"}))
        assert len(enabled) == 5
        S = kms.CryptoKeyVersion.CryptoKeyVersionState
        v1 = f"{key.name}/cryptoKeyVersions/1"
        got = KMS.update_crypto_key_version(request={
            "crypto_key_version": {"name": v1, "state": S.DISABLED},
            "update_mask": {"paths": ["state"]}})
        assert got.state == S.DISABLED
        try:
            KMS.asymmetric_sign(request={"name": v1, "digest": {"sha256": b"\0" * 32}})
            raise AssertionError("a disabled version signed")
        except exceptions.BadRequest as e:
            # FAILED_PRECONDITION travels as HTTP 400, as Google maps it.
            assert "DISABLED" in e.message, e.message
            assert e.response.json()["error"]["status"] == "FAILED_PRECONDITION"
        v2 = f"{key.name}/cryptoKeyVersions/2"
        assert KMS.destroy_crypto_key_version(name=v2).state == S.DESTROY_SCHEDULED
        assert KMS.restore_crypto_key_version(name=v2).state == S.DISABLED

    @check("a wrong digestCrc32c is refused")
    def _():
        key = signing_key("EC_SIGN_P256_SHA256")
        try:
            KMS.asymmetric_sign(request={"name": f"{key.name}/cryptoKeyVersions/1",
                                         "digest": {"sha256": b"\1" * 32},
                                         "digest_crc32c": crc(b"\2" * 32)})
            raise AssertionError("accepted a wrong checksum")
        except exceptions.BadRequest as e:
            assert "digest_crc32c" in e.message

    @check("NOT_FOUND for an unknown key version")
    def _():
        try:
            KMS.get_public_key(request={"name": f"{RING}/cryptoKeys/absent/cryptoKeyVersions/1"})
            raise AssertionError("found an absent key")
        except exceptions.NotFound:
            pass

    @check("faults: 403 naming the permission, 429, 503 as the client raises them")
    def _():
        key = signing_key("EC_SIGN_P256_SHA256")
        v = f"{key.name}/cryptoKeyVersions/1"
        fault(match=f"{v}:asymmetricSign", status=403, count=1)
        try:
            KMS.asymmetric_sign(request={"name": v, "digest": {"sha256": b"\0" * 32}})
            raise AssertionError("no 403")
        except exceptions.Forbidden as e:  # PERMISSION_DENIED as HTTP 403
            assert e.response.json()["error"]["status"] == "PERMISSION_DENIED"
            assert "cloudkms.cryptoKeyVersions.useToSign" in e.message, e.message
            assert e.reason == "IAM_PERMISSION_DENIED", e.reason
            assert e.metadata.get("permission") == "cloudkms.cryptoKeyVersions.useToSign"
        fault(match=f"{v}/publicKey", status=429, count=1)
        try:
            # No retry for this call: the client must see the 429 itself.
            KMS.get_public_key(request={"name": v}, retry=None)
            raise AssertionError("no 429")
        except exceptions.TooManyRequests as e:
            assert "Quota exceeded" in e.message
        fault(match=f"{v}/publicKey", status=503, count=1)
        try:
            KMS.get_public_key(request={"name": v}, retry=None)
            raise AssertionError("no 503")
        except exceptions.ServiceUnavailable:
            pass
        # The client's default retry rides out one 503.
        fault(match=f"{v}/publicKey", status=503, count=1)
        assert KMS.get_public_key(request={"name": v}).name == v

    @check("slow answers arrive; hung ones hit the client's timeout")
    def _():
        key = signing_key("EC_SIGN_P256_SHA256")
        v = f"{key.name}/cryptoKeyVersions/1"
        fault(match=f"{v}/publicKey", delay=1, count=1)
        start = time.time()
        assert KMS.get_public_key(request={"name": v}).name == v
        assert time.time() - start >= 1
        fault(match=f"{v}/publicKey", hang=True, count=1)
        start = time.time()
        try:
            KMS.get_public_key(request={"name": v}, retry=None, timeout=2)
            raise AssertionError("a hung call answered")
        except Exception as e:  # requests' timeout, wrapped or not by api_core
            assert "timed out" in str(e).lower() or "timeout" in type(e).__name__.lower(), repr(e)
        assert time.time() - start < 10

    @check("401 UNAUTHENTICATED for a token the emulator did not issue")
    def _():
        bogus = kms.KeyManagementServiceClient(
            credentials=oauth2_credentials.Credentials(token="not-a-token"), transport="rest",
            client_options=OPTIONS)
        try:
            bogus.get_key_ring(name=RING)
            raise AssertionError("served a bogus token")
        except RefreshError:
            pass  # the client's session refreshes only after a 401, and this token cannot
        req = urllib.request.Request(f"{URL}/v1/{RING}",
                                     headers={"Authorization": "Bearer not-a-token"})
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("served a bogus token")
        except urllib.error.HTTPError as e:
            assert e.code == 401
            assert json.loads(e.read())["error"]["status"] == "UNAUTHENTICATED"

    @check("Secret Manager: create, addVersion (dataCrc32c), access and latest")
    def _():
        parent = f"projects/{PROJECT}"
        secret = SM.create_secret(request={"parent": parent,
                                           "secret_id": f"s-{uuid.uuid4().hex[:12]}",
                                           "secret": {"replication": {"automatic": {}}}})
        for data in (b"-----BEGIN CERTIFICATE-----\nfirst\n", b"second"):
            v = SM.add_secret_version(request={"parent": secret.name,
                                               "payload": {"data": data, "data_crc32c": crc(data)}})
        assert v.name == f"{secret.name}/versions/2", v.name
        got = SM.access_secret_version(name=f"{secret.name}/versions/1")
        assert got.payload.data.startswith(b"-----BEGIN") and got.payload.data_crc32c == crc(got.payload.data)
        latest = SM.access_secret_version(name=f"{secret.name}/versions/latest")
        assert latest.name == v.name and latest.payload.data == b"second"
        try:
            SM.access_secret_version(name=f"{parent}/secrets/absent/versions/1")
            raise AssertionError("found an absent secret")
        except exceptions.NotFound:
            pass

    main_results()


def main_results():
    failed = [n for n, e in RESULTS if e]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
