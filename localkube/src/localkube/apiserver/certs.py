"""A throwaway certificate authority and serving certificate for the API server.

The bearer token of :mod:`.auth` is useless over plain HTTP: client-go (kubectl, and every
Go client) adds a kubeconfig's credentials only when the server is `https://`, so kubectl
would never send it. Each cluster therefore makes its own CA at start, signs a serving
certificate for its loopback address with it, and puts the CA into the kubeconfig
(`certificate-authority-data`), as a kubeadm cluster does. The CA's key is never written:
nothing else may be signed with it. The serving key is written 0600 next to the kubeconfig
because `ssl` loads keys from files only.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["ServingCert", "client_context", "generate", "new_ca"]

VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class ServingCert:
    """The CA certificate (PEM) clients trust, and the server's certificate and key files."""

    ca_pem: str
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return client_context(self.ca_pem)


def client_context(ca_pem: str) -> ssl.SSLContext:
    """An SSL context that trusts only the cluster's CA."""
    return ssl.create_default_context(cadata=ca_pem)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for host in ("127.0.0.1", "::1", *hosts):
        try:
            ip = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            dns = x509.DNSName(host)
            if dns not in names:
                names.append(dns)
            continue
        if ip not in names:
            names.append(ip)
    return names


def new_ca(
    common_name: str, validity: datetime.timedelta = VALIDITY
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate and its key (P-256), valid from five minutes ago."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(common_name)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    return ca, ca_key


def generate(directory: Path, hosts: Sequence[str] = ()) -> ServingCert:
    """A new CA and a serving certificate for `hosts` (plus localhost), in `directory`."""
    now = datetime.datetime.now(datetime.UTC)
    ca, ca_key = new_ca(f"localkube-ca@{int(now.timestamp())}")
    ca_name = ca.subject
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localkube-apiserver"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(_alt_names([*hosts, socket.gethostname()])), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_file, key_file = directory / "apiserver.crt", directory / "apiserver.key"
    pem = serialization.Encoding.PEM
    cert_file.write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return ServingCert(ca.public_bytes(pem).decode(), cert_file, key_file)
