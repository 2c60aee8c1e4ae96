"""The gateway verifies the tokens identity really issues: identity's own ``TokenService.issue`` signs through
Vault transit on a real OpenBao dev server (ES256 and RS256), its ``jwks()`` is served over HTTP, and the
gateway's verifier accepts them, follows a rotation (new kid fetched on first sight) and refuses a token of
a retired version once its cache refreshes. PostgreSQL is not needed: issuing reads nothing from it."""
from __future__ import annotations

import asyncio
import uuid
from http.server import BaseHTTPRequestHandler
from types import SimpleNamespace

import httpx
import jwt
import pytest

from soma_gateway import standins
from tests.openbao import dev_server
from soma_gateway.tokens import JwksCache, TokenRejected, TokenRules, TokenVerifier

hvac = pytest.importorskip("hvac")
keys_module = pytest.importorskip("soma_identity.keys")
tokens_module = pytest.importorskip("soma_identity.tokens")
store_module = pytest.importorskip("soma_identity.store")

ISSUER, AUDIENCE = "https://identity.dev.soma.local", "soma-api"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    with dev_server(tmp_path_factory.mktemp("openbao")) as server:
        client = hvac.Client(url=server.addr, token=server.root_token)
        client.sys.enable_secrets_engine("transit", path="transit")
        yield client


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
