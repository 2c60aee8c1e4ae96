"""Signing through Vault transit, verifying with the JWKS alone, rotating, and retiring — on OpenBao."""

from __future__ import annotations

import itertools
import json
import time

import hvac
import jwt
import pytest
from jwt import PyJWK

from soma_identity.keys import TransitSigner

names = (f"jwt-key-{n}" for n in itertools.count())


def verify_with_jwks(token: str, jwks: dict, algorithm: str) -> dict:
    """What the edge does: pick the JWK by kid, check the signature with PyJWT (no Vault involved)."""
    kid = jwt.get_unverified_header(token)["kid"]
    matching = [k for k in jwks["keys"] if k["kid"] == kid]
    if not matching:
        raise jwt.InvalidKeyError(f"kid {kid} not in the JWKS")
    return jwt.decode(token, PyJWK(matching[0]).key, algorithms=[algorithm], audience="soma-api")


def signer(client, algorithm="ES256", **options) -> TransitSigner:
    ring = TransitSigner(client, key_name=next(names), algorithm=algorithm, cache_seconds=0, **options)
    ring.ensure_key()
    return ring


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_a_token_signed_by_transit_verifies_with_the_published_jwks(vault, algorithm):
    _, client = vault
    keys = signer(client, algorithm)
    token = keys.sign({"sub": "u1", "aud": "soma-api", "exp": int(time.time()) + 60})
    assert verify_with_jwks(token, keys.jwks(), algorithm)["sub"] == "u1"
    # a changed payload under the same signature is refused
    head, payload, signature = token.split(".")
    forged = jwt.utils.base64url_encode(json.dumps({"sub": "admin", "aud": "soma-api"}).encode()).decode()
    with pytest.raises(jwt.InvalidSignatureError):
        verify_with_jwks(f"{head}.{forged}.{signature}", keys.jwks(), algorithm)


def test_the_private_key_cannot_be_exported_from_vault(vault):
    _, client = vault
    keys = signer(client)
    assert client.secrets.transit.read_key(keys.key_name)["data"]["exportable"] is False
    with pytest.raises(hvac.exceptions.InvalidRequest):
        client.secrets.transit.export_key(keys.key_name, key_type="signing-key")


def test_an_existing_exportable_key_is_refused(vault):
    _, client = vault
    name = next(names)
    client.secrets.transit.create_key(name, key_type="ecdsa-p256", exportable=True)
    with pytest.raises(RuntimeError, match="exportable"):
        TransitSigner(client, key_name=name, algorithm="ES256").ensure_key()


def test_rotation_publishes_first_signs_later_and_old_tokens_keep_verifying(vault):
    _, client = vault
    keys = signer(client, publish_delay=1)
    time.sleep(1.1)  # version 1 has been published long enough
    old_token = keys.sign({"sub": "u1", "aud": "soma-api"})
    assert jwt.get_unverified_header(old_token)["kid"] == f"{keys.key_name}-v1"

    keys.rotate()
    kids = [k["kid"] for k in keys.jwks()["keys"]]
    assert kids == [f"{keys.key_name}-v1", f"{keys.key_name}-v2"]  # v2 is published at once ...
    assert jwt.get_unverified_header(keys.sign({"aud": "soma-api"}))["kid"].endswith("-v1")  # ... v1 still signs
    time.sleep(1.1)
    new_token = keys.sign({"sub": "u2", "aud": "soma-api"})
    assert jwt.get_unverified_header(new_token)["kid"].endswith("-v2")
    jwks = keys.jwks()
    assert verify_with_jwks(old_token, jwks, "ES256")["sub"] == "u1"  # no downtime for live tokens
    assert verify_with_jwks(new_token, jwks, "ES256")["sub"] == "u2"


def test_a_retired_key_is_refused_after_its_grace_period_and_not_before(vault):
    _, client = vault
    grace = 600
    keys = signer(client, publish_delay=0)
    old_token = keys.sign({"sub": "u1", "aud": "soma-api"})
    keys.rotate()
    rotated_at = time.time()

    assert keys.retire(grace, now=rotated_at + grace - 5) == 1  # still inside the grace period: kept
    assert verify_with_jwks(old_token, keys.jwks(), "ES256")["sub"] == "u1"

    assert keys.retire(grace, now=rotated_at + grace + 5, trim=True) == 2
    jwks = keys.jwks()
    assert [k["kid"] for k in jwks["keys"]] == [f"{keys.key_name}-v2"]
    with pytest.raises(jwt.InvalidKeyError):
        verify_with_jwks(old_token, jwks, "ES256")
    # Vault itself no longer holds version 1 (trimmed) nor signs with it
    assert list(client.secrets.transit.read_key(keys.key_name)["data"]["keys"]) == ["2"]
    with pytest.raises(hvac.exceptions.VaultError, match="less than the minimum encryption key version"):
        client.secrets.transit.sign_data(keys.key_name, hash_input="YQ==", key_version=1, marshaling_algorithm="jws")
    assert verify_with_jwks(keys.sign({"sub": "u3", "aud": "soma-api"}), jwks, "ES256")["sub"] == "u3"
