"""Auto-unseal as the program configures it, on real OpenBao servers: a Vault whose configuration
carries the generated transit seal stanza comes back unsealed after a restart with nobody entering
key shares, and one whose token (VAULT_TOKEN, from credentialsSecret) may not use the key never does.

The transit provider is the session's OpenBao dev server (test_vault_access's fixture); the sealed
server is a second OpenBao process with Raft storage on a temporary folder. What differs from
production: plain HTTP on loopback (the settings require https for the transit address), and the
cloud KMS seals, which need their clouds (their stanzas are checked as text in test_vault_seal_settings).
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from test_vault_access import ROOT_TOKEN, _find_bao, _free_port_pair, bao_server  # noqa: F401 - the fixture

from components.core.secrets.vault_server import seal_stanza
from components.settings import SealSettings

KEY = "soma-test-unseal"


@pytest.fixture(scope="module")
def transit(bao_server):  # noqa: F811 - the imported fixture
    headers = {"X-Vault-Token": ROOT_TOKEN}
    requests.post(f"{bao_server.addr}/v1/sys/mounts/transit", json={"type": "transit"}, headers=headers, timeout=5).raise_for_status()
    requests.post(f"{bao_server.addr}/v1/transit/keys/{KEY}", json={}, headers=headers, timeout=5).raise_for_status()
    return bao_server


def start(bao: str, folder: Path, seal_hcl: str, token: str = ROOT_TOKEN) -> tuple[subprocess.Popen, str]:
    port = _free_port_pair()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = folder / "config.hcl"
    config.write_text(
        f'storage "raft" {{\n  path = "{folder / "data"}"\n  node_id = "node-1"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        f'api_addr = "http://127.0.0.1:{port}"\ncluster_addr = "http://127.0.0.1:{port + 1}"\n'
        "disable_mlock = true\n" + seal_hcl
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    env["VAULT_TOKEN"] = token  # how the pod gets it: extraSecretEnvironmentVars from credentialsSecret
    log = open(folder / "server.log", "ab")  # noqa: SIM115 - the child keeps the descriptor
    process = subprocess.Popen([bao, "server", f"-config={config}"], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env)
    log.close()
    return process, f"http://127.0.0.1:{port}"


def seal_status(addr: str, deadline_s: float = 20.0, want_sealed: bool | None = None) -> dict:
    deadline = time.monotonic() + deadline_s
    status: dict = {}
    while time.monotonic() < deadline:
        try:
            status = requests.get(f"{addr}/v1/sys/seal-status", timeout=1).json()
            if want_sealed is None or status.get("sealed") is want_sealed:
                return status
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    return status


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def stanza(transit_addr: str, key: str) -> str:
    return seal_stanza(SealSettings(type="transit", address=transit_addr, mount_path="transit/", key_name=key))


def test_a_restarted_vault_unseals_itself_through_the_generated_transit_stanza(transit, tmp_path):
    bao = _find_bao()
    process, addr = start(bao, tmp_path, stanza(transit.addr, KEY))
    try:
        assert seal_status(addr).get("initialized") is False
        init = requests.post(f"{addr}/v1/sys/init", json={"recovery_shares": 1, "recovery_threshold": 1}, timeout=30)
        assert init.status_code == 200, init.text
        assert init.json().get("recovery_keys"), "auto-unseal hands out recovery keys, not unseal keys"
        assert seal_status(addr, want_sealed=False).get("sealed") is False
    finally:
        stop(process)
    process, addr = start(bao, tmp_path, stanza(transit.addr, KEY))
    try:
        status = seal_status(addr, want_sealed=False)
        assert status.get("sealed") is False, f"still sealed after a restart: {status}"
        assert status.get("type") == "transit"
    finally:
        stop(process)


def test_a_token_that_may_not_use_the_key_never_unseals(transit, tmp_path):
    headers = {"X-Vault-Token": ROOT_TOKEN}
    weak = requests.post(f"{transit.addr}/v1/auth/token/create", json={"policies": ["default"], "ttl": "10m"},
                         headers=headers, timeout=5).json()["auth"]["client_token"]
    process, addr = start(_find_bao(), tmp_path, stanza(transit.addr, KEY), token=weak)
    try:
        status = seal_status(addr, deadline_s=10.0)
        if process.poll() is not None:  # the seal refused the token at start-up: Vault does not run at all
            assert "permission denied" in (tmp_path / "server.log").read_text(errors="replace")
            return
        init = requests.post(f"{addr}/v1/sys/init", json={"recovery_shares": 1, "recovery_threshold": 1}, timeout=30)
        assert init.status_code != 200, (status, init.text)
        assert seal_status(addr, deadline_s=3.0).get("sealed") is not False
    finally:
        if process.poll() is None:
            stop(process)
