"""identity as the processes that run in the cluster: the key-management commands and the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.local_servers import free_port

APPS = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join(str(p) for p in sorted(APPS.glob("*/src")))


@pytest.fixture
def environment(vault, postgres, tmp_path):
    address, root_client = vault
    (tmp_path / "vault_token").write_text(root_client.token)
    return {"PATH": os.environ["PATH"], "PYTHONPATH": PYTHONPATH, "SOMA_ISSUER": "https://identity.dev.soma.local",
            "SOMA_ALLOWED_AUDIENCES": '["soma-api"]', "SOMA_VAULT_ADDR": address, "SOMA_DATABASE_DSN": postgres,
            "SOMA_SECRETS_DIR": str(tmp_path), "SOMA_SIGNING_KEY_NAME": f"cli-{tmp_path.name}",
            "SOMA_KEY_PUBLISH_DELAY_SECONDS": "0", "SOMA_ACCESS_TOKEN_TTL_SECONDS": "1", "SOMA_CLOCK_SKEW_SECONDS": "0",
            "SOMA_HTTP_HOST": "127.0.0.1", "SOMA_HTTP_PORT": str(free_port())}


def identity(environment, *argv):
    done = subprocess.run([sys.executable, "-m", "soma_identity", *argv], env=environment, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["kids"]


def test_key_commands_create_rotate_and_retire_after_the_grace_period(environment):
    key = environment["SOMA_SIGNING_KEY_NAME"]
    assert identity(environment, "keys", "ensure") == [f"{key}-v1"]
    assert identity(environment, "keys", "rotate") == [f"{key}-v1", f"{key}-v2"]
    # with 60 s tokens, v1's tokens may still be live: it stays
    assert identity({**environment, "SOMA_ACCESS_TOKEN_TTL_SECONDS": "60"}, "keys", "retire") == [f"{key}-v1", f"{key}-v2"]
    time.sleep(1.2)  # with 1 s tokens (and 0 s skew, 0 s publish delay) the grace period is over
    assert identity(environment, "keys", "retire", "--trim") == [f"{key}-v2"]


def test_the_server_process_serves_the_jwks_and_stops_on_sigterm(environment):
    identity(environment, "keys", "ensure")
    url = f"http://127.0.0.1:{environment['SOMA_HTTP_PORT']}"
    process = subprocess.Popen([sys.executable, "-m", "soma_identity"], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        jwks = httpx.get(f"{url}/.well-known/jwks.json").json()
        assert [k["kid"] for k in jwks["keys"]] == [f"{environment['SOMA_SIGNING_KEY_NAME']}-v1"]
        assert jwks["keys"][0]["kty"] == "EC" and jwks["keys"][0]["crv"] == "P-256"
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == -signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
    messages = [json.loads(line)["message"] for line in process.stdout.read().splitlines() if line.startswith("{")]
    assert messages.index("service stopped") > messages.index("shutdown signal received; draining")


def test_a_secret_in_the_environment_stops_identity_naming_it(environment):
    environment["SOMA_VAULT_TOKEN"] = "root"
    done = subprocess.run([sys.executable, "-m", "soma_identity"], env=environment, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "SOMA_VAULT_TOKEN: vault_token is a secret" in done.stderr


def test_the_openapi_document_is_generated_without_any_server():
    done = subprocess.run([sys.executable, "-m", "soma_identity", "openapi"], env={"PATH": os.environ["PATH"],
                          "PYTHONPATH": PYTHONPATH}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert {"/.well-known/jwks.json", "/v1/tokens", "/v1/tokens/revoke", "/v1/tokens/introspect", "/v1/users",
            "/v1/service-accounts", "/healthz", "/readyz"} <= set(document["paths"])
    assert sorted(document["paths"]["/v1/tokens"]["post"]["responses"]) == ["200", "400", "401", "403"]
