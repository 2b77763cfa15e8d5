"""The API server's host check and the kubeconfig credentials clients read."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import yaml

from localkube.apiserver import ApiServer
from localkube.apiserver.auth import (
    NotLoopback,
    check_host,
    new_token,
    read_credentials,
    write_private,
)
from localkube.apiserver.certs import generate


@pytest.mark.parametrize("host", ["127.0.0.1", "127.64.0.9", "::1", "localhost"])
def test_loopback_hosts_are_accepted(host: str):
    check_host(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_other_hosts_are_refused_unless_allowed(host: str):
    with pytest.raises(NotLoopback, match="--allow-non-loopback"):
        check_host(host)
    check_host(host, allow_non_loopback=True)


def test_the_api_server_refuses_a_non_loopback_host():
    with pytest.raises(NotLoopback):
        ApiServer("0.0.0.0")


def test_tokens_are_random_and_long():
    tokens = {new_token() for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) >= 40 for t in tokens)


def test_private_files_are_0600_even_when_they_existed(tmp_path: Path):
    path = tmp_path / "kubeconfig"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new" and path.stat().st_mode & 0o777 == 0o600


def test_the_kubeconfig_carries_the_token_and_a_ca_that_verifies_the_server(tmp_path: Path):
    tls = generate(tmp_path / "pki", ["127.0.0.1"])
    server = ApiServer(token="t0ken", tls=tls)
    server.url = "https://127.0.0.1:6443"
    path = write_private(tmp_path / "kubeconfig", server.kubeconfig())
    config = yaml.safe_load(path.read_text())
    assert config["users"][0]["user"] == {"token": "t0ken"}
    creds = read_credentials(path)
    assert creds.server == "https://127.0.0.1:6443" and creds.token == "t0ken"
    assert creds.headers() == {"Authorization": "Bearer t0ken"}
    ctx = creds.ssl_context()
    assert ctx is not None and ctx.verify_mode == ssl.CERT_REQUIRED
    assert tls.key_file.stat().st_mode & 0o777 == 0o600
    assert "BEGIN CERTIFICATE" in creds.ca_pem


def test_without_a_token_the_kubeconfig_has_no_credentials(tmp_path: Path):
    server = ApiServer()
    path = write_private(tmp_path / "kubeconfig", server.kubeconfig())
    creds = read_credentials(path)
    assert creds.token == "" and creds.ssl_context() is None and creds.headers() == {}
