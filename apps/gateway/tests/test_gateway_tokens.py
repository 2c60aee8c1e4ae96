"""Token verification against identity's JWKS served over HTTP by a local server: the claims that must hold,
the reason code for each failure, key rotation through the cache (refetch on an unknown kid, rate limited)
and what happens when identity cannot be reached."""
from __future__ import annotations

import asyncio
import time

import httpx
import jwt
import pytest

from gateway_fixtures import AUDIENCE, ISSUER
from soma_gateway.tokens import JwksCache, KeysUnavailable, TokenRejected, TokenRules, TokenVerifier


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def verify(identity, token: str, *, cache: JwksCache | None = None, **rules):
    async def run():
        async with httpx.AsyncClient() as client:
            keys = cache or JwksCache(identity.url + "/.well-known/jwks.json", client)
            keys.client = client
            return await TokenVerifier(keys, TokenRules(ISSUER, AUDIENCE, **rules)).verify(f"Bearer {token}")
    return asyncio.run(run())


def rejected(identity, token: str, **rules) -> str:
    with pytest.raises(TokenRejected) as caught:
        verify(identity, token, **rules)
    return caught.value.reason


def test_a_valid_token_gives_the_principal_and_its_tenant(identity):
    principal = verify(identity, identity.token("k1", sub="bob", tenant="acme"))
    assert (principal.subject, principal.kind, principal.tenant, principal.fga_user) == ("bob", "user", "acme", "user:bob")
    agent = verify(identity, identity.token("k1", sub="acme-support", kind="agent"))
    assert agent.fga_user == "agent:acme-support" and agent.actor_type == "agent"


@pytest.mark.parametrize("change, reason", [
    ({"lifetime": -120}, "token_expired"),
    ({"nbf": int(time.time()) + 600}, "token_not_yet_valid"),
    ({"aud": "another-api"}, "token_audience_invalid"),
    ({"iss": "https://evil.example.com"}, "token_issuer_invalid"),
    ({"tenant": None}, "token_tenant_invalid"),
    ({"tenant": "Not A Label"}, "token_tenant_invalid"),
    ({"kind": "robot"}, "token_principal_invalid"),
    ({"sub": "user:alice#member"}, "token_principal_invalid"),
])
def test_each_broken_claim_is_refused_with_its_reason(identity, change, reason):
    assert rejected(identity, identity.token("k1", **change)) == reason


def test_a_token_without_expiry_is_refused(identity):
    assert rejected(identity, identity.token("k1", exp=None)) == "token_claim_missing"


def test_signature_algorithm_and_format_failures(identity):
    good = identity.token("k1")
    head, body, sig = good.split(".")
    forged = identity.token("k1", sub="root")
    assert rejected(identity, f"{head}.{forged.split('.')[1]}.{sig}") == "token_signature_invalid"
    unsigned = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "tenant": "acme", "exp": int(time.time()) + 60},
                          None, algorithm="none", headers={"kid": "k1"})
    assert rejected(identity, unsigned) == "token_algorithm_refused"
    hs = jwt.encode({"sub": "x"}, "a-shared-secret-long-enough-for-hs256!!", algorithm="HS256", headers={"kid": "k1"})
    assert rejected(identity, hs) == "token_algorithm_refused"
    assert rejected(identity, "not-a-jwt") == "token_malformed"


def test_missing_or_non_bearer_authorization_is_refused(identity):
    async def run(header):
        async with httpx.AsyncClient() as client:
            verifier = TokenVerifier(JwksCache(identity.url + "/.well-known/jwks.json", client), TokenRules(ISSUER, AUDIENCE))
            with pytest.raises(TokenRejected) as caught:
                await verifier.verify(header)
            return caught.value.reason
    assert asyncio.run(run(None)) == "token_missing"
    assert asyncio.run(run("Basic YWxpY2U6cHc=")) == "token_malformed"


def test_a_rotated_key_is_fetched_on_first_sight_and_the_refetch_is_rate_limited(identity):
    clock = Clock()

    async def run():
        async with httpx.AsyncClient() as client:
            cache = JwksCache(identity.url + "/.well-known/jwks.json", client, ttl=300, refresh_interval=10, clock=clock)
            verifier = TokenVerifier(cache, TokenRules(ISSUER, AUDIENCE))
            await verifier.verify("Bearer " + identity.token("k1"))
            assert cache.fetches == 1
            identity.add_key("k2")                        # identity rotates: k2 signs from now on
            clock.now += 11
            principal = await verifier.verify("Bearer " + identity.token("k2", sub="carol"))
            assert principal.subject == "carol" and cache.fetches == 2
            # forged kids: the first refetch happens, the next ones inside refresh_interval do not
            clock.now += 11
            for n in range(5):
                with pytest.raises(TokenRejected) as caught:
                    await verifier.verify("Bearer " + identity.token("k1", headers={"kid": f"forged-{n}"}))
                assert caught.value.reason == "token_key_unknown"
            assert cache.fetches == 3
            await verifier.verify("Bearer " + identity.token("k1"))   # known keys keep working meanwhile
            assert cache.fetches == 3
    asyncio.run(run())


def test_a_retired_key_is_refused_once_the_cache_refreshes(identity):
    clock = Clock()
    identity.add_key("k-old")

    async def run():
        async with httpx.AsyncClient() as client:
            cache = JwksCache(identity.url + "/.well-known/jwks.json", client, ttl=60, clock=clock)
            verifier = TokenVerifier(cache, TokenRules(ISSUER, AUDIENCE))
            token = identity.token("k-old")
            await verifier.verify("Bearer " + token)
            identity.retire("k-old")
            clock.now += 61                               # the cache's ttl runs out: next request refetches
            with pytest.raises(TokenRejected) as caught:
                await verifier.verify("Bearer " + token)
            assert caught.value.reason == "token_key_unknown"
    asyncio.run(run())


def test_identity_unreachable_without_cached_keys_fails_closed(identity):
    token = identity.token("k1")

    async def run():
        async with httpx.AsyncClient() as client:
            cache = JwksCache("http://127.0.0.1:9/.well-known/jwks.json", client, timeout=0.5)
            verifier = TokenVerifier(cache, TokenRules(ISSUER, AUDIENCE))
            with pytest.raises(KeysUnavailable):
                await verifier.verify("Bearer " + token)
    asyncio.run(run())


def test_identity_unreachable_with_cached_keys_serves_until_max_stale(identity):
    clock = Clock()

    async def run():
        async with httpx.AsyncClient() as client:
            cache = JwksCache(identity.url + "/.well-known/jwks.json", client, ttl=60, max_stale=600, clock=clock)
            verifier = TokenVerifier(cache, TokenRules(ISSUER, AUDIENCE))
            await verifier.verify("Bearer " + identity.token("k1"))
            cache.url = "http://127.0.0.1:9/.well-known/jwks.json"   # identity gone
            clock.now += 120                                          # past ttl, inside max_stale
            assert (await verifier.verify("Bearer " + identity.token("k1"))).subject == "alice"
            clock.now += 600                                          # past max_stale: nothing usable
            with pytest.raises(KeysUnavailable):
                await verifier.verify("Bearer " + identity.token("k1"))
    asyncio.run(run())
