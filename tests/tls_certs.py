"""Certificates for TLS tests, made on the spot with `cryptography`: a CA, a server certificate
for 127.0.0.1 and client certificates, as PEM files in a directory.

P-256 keys, because they are generated in milliseconds; valid from an hour ago (clock skew)
for a day, long enough for any test run.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=1)
SKEW = timedelta(hours=1)


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate file and what signs with it."""

    name: str
    cert: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_file(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - SKEW)
        .not_valid_after(now + VALIDITY)
    )


def make_ca(directory: Path, name: str) -> Authority:
    """A self-signed CA named `name`, its certificate in `directory`/`name`-ca.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        _builder(_name(name), _name(name), key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    cert = directory / f"{name}-ca.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Authority(name, cert, certificate, key)


def issue(
    ca: Authority, directory: Path, common_name: str, *, server_ip: str | None = None
) -> Issued:
    """A leaf certificate signed by `ca`: a server's for `server_ip` (an IP SAN, which is what
    a client checks), else a client's with `common_name` as its subject CN."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_ip else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(_name(common_name), ca.certificate.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if server_ip:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]),
            critical=False,
        )
    certificate = builder.sign(ca.key, hashes.SHA256())
    stem = directory / f"{ca.name}-{common_name}"
    cert = stem.with_suffix(".pem")
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return Issued(cert, _key_file(key, stem.with_suffix(".key")))
