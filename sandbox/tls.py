"""The sandbox's X.509: CAs and the server certificates they sign, for its TLS endpoints.

Each stand-in keeps the profile of what it imitates (key type, validity, CA extensions), so those are arguments;
everything else is the same everywhere: SHA-256 signatures, a subject key identifier on each CA and an authority
key identifier on each certificate it issues (which strict verifiers, such as Python 3.13's default context, want).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# Certificates start a little in the past, so a client whose clock is slightly behind still accepts them.
BACKDATE = datetime.timedelta(minutes=5)
CA_USAGE = ("digital_signature", "key_cert_sign", "crl_sign")
_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
           "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")


def _name(common_name, organization=None):
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)] if organization else []
    return x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_ca(common_name, days, path_length=0, *, organization=None, use_rsa=False, key_usage=CA_USAGE,
           backdate=BACKDATE):
    """(cert, key) of a self-signed CA valid from now - backdate for `days` days; key_usage=() leaves KeyUsage out."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if use_rsa else ec.generate_private_key(
        ec.SECP256R1())
    name = _name(common_name, organization)
    start = datetime.datetime.now(datetime.timezone.utc) - backdate
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(start)
               .not_valid_after(start + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True))
    if key_usage:
        builder = builder.add_extension(x509.KeyUsage(**{u: u in key_usage for u in _USAGES}), critical=True)
    cert = (builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def issue(ca_cert, ca_key, common_name, dns_names=(), ips=(), days=None, *, server_auth=True):
    """(cert, key): an EC P-256 certificate for CN=common_name signed by the CA, with the names as SANs.

    days=None gives it the CA's own validity; server_auth adds ExtendedKeyUsage serverAuth.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    if days is None:
        start, end = ca_cert.not_valid_before_utc, ca_cert.not_valid_after_utc
    else:
        start = datetime.datetime.now(datetime.timezone.utc) - BACKDATE
        end = start + datetime.timedelta(days=days)
    builder = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end))
    sans = [x509.DNSName(n) for n in dns_names] + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if server_auth:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    cert = (builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_private(path, data):
    """Write `data` (bytes or str) to `path`, mode 0600, replacing it whole: no reader sees half a key."""
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data if isinstance(data, bytes) else data.encode())
    os.replace(path + ".tmp", path)


def server_context(path, cert, key, chain=()):
    """A TLS server context presenting cert (+ chain), from a 0600 file at `path` holding them and the key."""
    write_private(path, pem(cert) + b"".join(pem(c) for c in chain) + key_pem(key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(path)
    return ctx
