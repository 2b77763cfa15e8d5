"""The certificates and keys a real control plane needs, generated on loopback.

kube-apiserver refuses to run without TLS, and its authenticators map client certificates to
users (CN) and groups (O): the admin is in `system:masters`, the controller manager and the
scheduler have their well-known names so that the bootstrap RBAC policy grants them what
they need. One throwaway CA signs everything; the service-account key pair signs tokens.
Written with `cryptography` because no CLI (cfssl, openssl scripts) is assumed on the host.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from localkube.apiserver.certs import new_ca

__all__ = ["Credentials", "Pki", "generate"]

VALIDITY = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Credentials:
    """A certificate and its key, as files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """Every file of the control plane's PKI."""

    ca_cert: Path
    ca_key: Path
    apiserver: Credentials
    admin: Credentials
    controller_manager: Credentials
    scheduler: Credentials
    kubelet_client: Credentials
    node_agent: Credentials
    kubelet_serving: Credentials
    sa_key: Path
    sa_pub: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    server: bool = False,
    client: bool = False,
    hosts: tuple[str, ...] = (),
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if hosts:
        sans: list[x509.GeneralName] = []
        for h in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def generate(directory: Path, *, node_name: str, apiserver_hosts: tuple[str, ...]) -> Pki:
    """Write a fresh CA, the component certificates and the service-account keys."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_cert, ca_key = new_ca("kubellm-realkube-ca", VALIDITY)
    ca_cert_path, ca_key_path = directory / "ca.crt", directory / "ca.key"
    ca_cert_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key_path, ca_key)

    def issue(stem: str, subject: x509.Name, **kwargs: object) -> Credentials:
        key = _key()
        cert = _issue(ca_cert, ca_key, subject, key, **kwargs)  # type: ignore[arg-type]
        cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)
        return Credentials(cert_path, key_path)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_key_path, sa_pub_path = directory / "sa.key", directory / "sa.pub"
    _write_key(sa_key_path, sa_key)
    sa_pub_path.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return Pki(
        ca_cert=ca_cert_path,
        ca_key=ca_key_path,
        apiserver=issue("apiserver", _name("kube-apiserver"), server=True, hosts=apiserver_hosts),
        admin=issue("admin", _name("kubernetes-admin", "system:masters"), client=True),
        controller_manager=issue(
            "controller-manager", _name("system:kube-controller-manager"), client=True
        ),
        scheduler=issue("scheduler", _name("system:kube-scheduler"), client=True),
        kubelet_client=issue(
            "apiserver-kubelet-client",
            _name("kube-apiserver-kubelet-client", "system:masters"),
            client=True,
        ),
        # localkube's kubelet lists Secrets and ConfigMaps of every namespace through shared
        # informers (a real kubelet watches only its pods' objects); the Node authorizer would
        # refuse that, so the node agent is an admin with its own name for audit logs.
        node_agent=issue(
            "node-agent", _name(f"localkube-node-agent:{node_name}", "system:masters"), client=True
        ),
        kubelet_serving=issue(
            "kubelet", _name(f"system:node:{node_name}"), server=True, hosts=("127.0.0.1",)
        ),
        sa_key=sa_key_path,
        sa_pub=sa_pub_path,
    )
