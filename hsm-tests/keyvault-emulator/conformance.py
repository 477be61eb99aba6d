#!/usr/bin/env python3
"""Keeps the Key Vault emulator honest: drives it with Microsoft's official Python SDK
(azure-identity, azure-keyvault-keys, -certificates, -secrets) exactly as against Azure, and checks
the results with `cryptography`. Anything the SDK rejects is a bug in the emulator.

Run by hsm-tests/tests/azure_keyvault.rs with the venv of scripts/keyvault-emulator.sh and the
variables of its state file (KV_EMULATOR_VAULT_URL, KV_EMULATOR_ADMIN_URL, AZURE_AUTHORITY_HOST,
AZURE_TENANT_ID, KV_EMULATOR_CLIENT_SECRET, REQUESTS_CA_BUNDLE). Prints one line per check and
`N passed, M failed`; exits 1 on any failure.
"""

import base64
import datetime
import json
import os
import sys
import traceback
import urllib.request
import uuid

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ClientAssertionCredential, ClientSecretCredential
from azure.keyvault.certificates import (CertificateClient, CertificateContentType, CertificatePolicy,
                                         KeyUsageType, WellKnownIssuerNames)
from azure.keyvault.keys import KeyClient, KeyCurveName
from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
from azure.keyvault.secrets import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VAULT = os.environ["KV_EMULATOR_VAULT_URL"]
ADMIN = os.environ["KV_EMULATOR_ADMIN_URL"]
TENANT = os.environ["AZURE_TENANT_ID"]
SECRET = os.environ["KV_EMULATOR_CLIENT_SECRET"]
CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING.dotted_string
RUN = uuid.uuid4().hex[:8]
RESULTS = {"passed": 0, "failed": 0}


def credential(client_id="conformance"):
    return ClientSecretCredential(TENANT, client_id, SECRET, disable_instance_discovery=True)


def check(name):
    def wrap(fn):
        try:
            fn()
            RESULTS["passed"] += 1
            print(f"PASS {name}")
        except Exception:  # noqa: BLE001 - report every failure and go on
            RESULTS["failed"] += 1
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)
        return fn
    return wrap


def fault(match, status, count, retry_after=None):
    req = urllib.request.Request(f"{ADMIN}/_admin/fault", method="POST", data=json.dumps(
        {"match": match, "status": status, "count": count, "retry_after": retry_after}).encode())
    urllib.request.urlopen(req, timeout=10).read()


def public_key(jwk):
    if jwk.kty.startswith("RSA"):
        return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()
    curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[getattr(jwk.crv, "value", jwk.crv)]
    return ec.EllipticCurvePublicNumbers(int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"),
                                         curve()).public_key()


def verify(pub, alg, digest, signature):
    name = str(alg.value if hasattr(alg, "value") else alg)
    algo = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[name[2:]]
    prehashed = utils.Prehashed(algo)
    if name.startswith("PS"):
        pub.verify(signature, digest, padding.PSS(padding.MGF1(algo), algo.digest_size), prehashed)
    elif name.startswith("RS"):
        pub.verify(signature, digest, padding.PKCS1v15(), prehashed)
    else:
        size = len(signature) // 2
        der = utils.encode_dss_signature(int.from_bytes(signature[:size], "big"),
                                         int.from_bytes(signature[size:], "big"))
        pub.verify(der, digest, ec.ECDSA(prehashed))


keys = KeyClient(VAULT, credential())
certs = CertificateClient(VAULT, credential())
secrets = SecretClient(VAULT, credential())

SPECS = [("rsa", 2048, None, SignatureAlgorithm.ps256), ("rsa", 3072, None, SignatureAlgorithm.ps384),
         ("rsa", 4096, None, SignatureAlgorithm.ps512), ("ec", None, KeyCurveName.p_256, SignatureAlgorithm.es256),
         ("ec", None, KeyCurveName.p_384, SignatureAlgorithm.es384),
         ("ec", None, KeyCurveName.p_521, SignatureAlgorithm.es512)]

for kind, size, crv, alg in SPECS:
    @check(f"create {kind} {size or crv.value} key, get it (versionless and versioned), sign {alg.value}, verify")
    def _(kind=kind, size=size, crv=crv, alg=alg):
        name = f"conf-{kind}-{size or crv.value}-{RUN}"
        key = keys.create_rsa_key(name, size=size) if kind == "rsa" else keys.create_ec_key(name, curve=crv)
        assert key.name == name and key.properties.version
        latest = keys.get_key(name)
        assert latest.id == key.id, (latest.id, key.id)
        exact = keys.get_key(name, key.properties.version)
        assert exact.key.kid == key.key.kid
        digest_algo = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg.value[2:]]
        h = hashes.Hash(digest_algo)
        h.update(b"conformance payload")
        digest = h.finalize()
        result = CryptographyClient(key, credential()).sign(alg, digest)
        assert result.key_id == key.id
        verify(public_key(key.key), alg, digest, result.signature)
        if kind == "rsa":
            # PKCS#1 v1.5 too (not for notation, but part of the API the SDK offers).
            h = hashes.Hash(hashes.SHA256())
            h.update(b"conformance payload")
            sha256 = h.finalize()
            rs = CryptographyClient(key, credential()).sign(SignatureAlgorithm.rs256, sha256)
            verify(public_key(key.key), SignatureAlgorithm.rs256, sha256, rs.signature)


for content_type in (CertificateContentType.pkcs12, CertificateContentType.pem):
    @check(f"create a self-signed code-signing certificate ({content_type.value}), get it and its secret")
    def _(content_type=content_type):
        name = f"conf-cert-{'p12' if content_type == CertificateContentType.pkcs12 else 'pem'}-{RUN}"
        policy = CertificatePolicy(issuer_name=WellKnownIssuerNames.self, subject="CN=conformance signer",
                                   key_type="EC", key_curve_name=KeyCurveName.p_384,
                                   key_usage=[KeyUsageType.digital_signature],
                                   enhanced_key_usage=[CODE_SIGNING], content_type=content_type,
                                   validity_in_months=6)
        cert = certs.begin_create_certificate(name, policy, _polling_interval=0).result()
        assert cert.name == name and cert.cer
        leaf = x509.load_der_x509_certificate(bytes(cert.cer))
        ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.digital_signature and not ku.value.key_encipherment
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert [o.dotted_string for o in eku] == [CODE_SIGNING]
        got = certs.get_certificate(name)
        assert bytes(got.cer) == bytes(cert.cer) and got.key_id and got.secret_id
        secret = secrets.get_secret(name)
        assert secret.properties.content_type == content_type.value, secret.properties.content_type
        if content_type == CertificateContentType.pkcs12:
            private, p12_leaf, _ = pkcs12.load_key_and_certificates(base64.b64decode(secret.value), None)
        else:
            private = serialization.load_pem_private_key(secret.value.encode(), None)
            p12_leaf = x509.load_pem_x509_certificate(secret.value.encode())
        assert p12_leaf.public_bytes(serialization.Encoding.DER) == bytes(cert.cer)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        assert private.public_key().public_bytes(serialization.Encoding.DER, spki) == \
            leaf.public_key().public_bytes(serialization.Encoding.DER, spki)
        # The certificate's key signs like any key, under the same version.
        key = keys.get_key(name, got.properties.version)
        digest = hashes.Hash(hashes.SHA384())
        digest.update(b"x")
        digest = digest.finalize()
        sig = CryptographyClient(key, credential()).sign(SignatureAlgorithm.es384, digest).signature
        verify(leaf.public_key(), SignatureAlgorithm.es384, digest, sig)


@check("create with issuer Unknown, merge a CA-signed chain, read the chain from the secret")
def _():
    name = f"conf-merge-{RUN}"
    policy = CertificatePolicy(issuer_name=WellKnownIssuerNames.unknown, subject="CN=merged signer",
                               key_type="RSA", key_size=2048, key_usage=[KeyUsageType.digital_signature],
                               content_type=CertificateContentType.pem)
    poller = certs.begin_create_certificate(name, policy)
    op = certs.get_certificate_operation(name)
    assert op.status == "inProgress" and op.csr, op.status
    csr = x509.load_der_x509_csr(bytes(op.csr))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conformance CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_name).public_key(csr.public_key())
            .serial_number(2).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    merged = certs.merge_certificate(name, [leaf.public_bytes(serialization.Encoding.DER),
                                            ca.public_bytes(serialization.Encoding.DER)])
    assert bytes(merged.cer) == leaf.public_bytes(serialization.Encoding.DER)
    del poller
    value = secrets.get_secret(name).value
    pems = [x509.load_pem_x509_certificate(b) for b in
            [p.encode() + b"-----END CERTIFICATE-----\n" for p in value.split("-----END CERTIFICATE-----")[:-1]]]
    assert [c.subject for c in pems] == [leaf.subject, ca.subject]


@check("import a PEM key and certificate, get it")
def _():
    name = f"conf-import-{RUN}"
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imported")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(3).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM)
    imported = certs.import_certificate(name, pem, policy=CertificatePolicy(content_type=CertificateContentType.pem))
    assert bytes(imported.cer) == cert.public_bytes(serialization.Encoding.DER)
    assert bytes(certs.get_certificate_version(name, imported.properties.version).cer) == bytes(imported.cer)


@check("errors: 404 KeyNotFound, 403 without keys/sign, 403 KeyDisabled, 404 SecretNotFound")
def _():
    try:
        keys.get_key(f"conf-missing-{RUN}")
        raise AssertionError("no error for a missing key")
    except ResourceNotFoundError as e:
        assert e.status_code == 404 and e.error.code == "KeyNotFound", (e.status_code, e.error)
    try:
        secrets.get_secret(f"conf-missing-{RUN}")
        raise AssertionError("no error for a missing secret")
    except ResourceNotFoundError as e:
        assert e.error.code == "SecretNotFound"
    name = f"conf-deny-{RUN}"
    key = keys.create_ec_key(name, curve=KeyCurveName.p_256)
    denied = CryptographyClient(key.id, credential("deny-keys.sign"))
    try:
        denied.sign(SignatureAlgorithm.es256, b"\0" * 32)
        raise AssertionError("signed without keys/sign")
    except HttpResponseError as e:
        assert e.status_code == 403 and e.error.code == "Forbidden", (e.status_code, e.error)
    keys.update_key_properties(name, key.properties.version, enabled=False)
    try:
        keys.get_key(name)
        raise AssertionError("got a disabled key")
    except HttpResponseError as e:
        assert e.status_code == 403 and "disabled" in e.message, e.message


@check("errors: 429 with Retry-After is retried by the SDK, then surfaces when it persists")
def _():
    name = f"conf-throttle-{RUN}"
    keys.create_ec_key(name, curve=KeyCurveName.p_256)
    fault(f"/keys/{name}", 429, 1, "0")
    assert keys.get_key(name).name == name
    fault(f"/keys/{name}", 429, -1, "0")
    limited = KeyClient(VAULT, credential(), retry_total=1)
    try:
        limited.get_key(name)
        raise AssertionError("no error while throttled")
    except HttpResponseError as e:
        assert e.status_code == 429 and e.error.code == "Throttled", (e.status_code, e.error)


@check("workload identity: a federated client assertion gets a token")
def _():
    def assertion():
        b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
        return f"{b64({'alg': 'RS256'})}.{b64({'aud': ['api://AzureADTokenExchange'], 'sub': 'conf'})}.c2ln"
    cred = ClientAssertionCredential(TENANT, "conformance-wid", assertion, disable_instance_discovery=True)
    name = f"conf-wid-{RUN}"
    assert KeyClient(VAULT, cred).create_ec_key(name, curve=KeyCurveName.p_384).name == name


print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
sys.exit(1 if RESULTS["failed"] else 0)
