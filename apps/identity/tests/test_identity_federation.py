"""Federation: an external provider's ID token, checked against its JWKS (served here by the test), becomes a
local user and identity's own tokens."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from identity_fixtures import AUDIENCE, running, settings_for, verify_independently

PROVIDER = "https://login.example-idp.test"
CLIENT_ID = "soma-identity"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"


@pytest.fixture(scope="module")
def provider():
    """The provider's signing key and its JWKS on a loopback HTTP server."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": "idp-1", "use": "sig", "alg": "RS256"}
    body = json.dumps({"keys": [jwk]}).encode()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.path == "/jwks" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if self.path == "/jwks" else b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield key, f"http://127.0.0.1:{server.server_port}/jwks"
    server.shutdown()


def id_token(key, kid="idp-1", **claims):
    now = int(time.time())
    payload = {"iss": PROVIDER, "aud": CLIENT_ID, "sub": "ext-123", "iat": now, "exp": now + 300,
               "preferred_username": "grace", "org": "tenant-fed", **claims}
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


@pytest.fixture(scope="module")
def identity(vault, postgres, provider, tmp_path_factory):
    _, jwks_url = provider
    settings = settings_for(vault, postgres, tmp_path_factory.mktemp("secrets"), federation_issuer=PROVIDER,
                            federation_jwks_url=jwks_url, federation_audience=CLIENT_ID,
                            federation_tenant_claim="org", federation_scopes='["agents:read"]')
    with running(settings) as client:
        yield client


def exchange(client, token, **extra):
    return client.post("/v1/tokens", json={"grant_type": EXCHANGE, "subject_token": token,
                                           "subject_token_type": ID_TOKEN, "audience": AUDIENCE, **extra})


def test_an_external_id_token_maps_to_one_local_user_with_identitys_own_tokens(identity, provider):
    key, _ = provider
    first = exchange(identity, id_token(key))
    assert first.status_code == 200, first.text
    claims = verify_independently(identity, first.json()["access_token"])
    assert claims["tenant"] == "tenant-fed" and claims["name"] == "grace" and claims["scope"] == "agents:read"
    assert first.json()["refresh_token"]
    again = verify_independently(identity, exchange(identity, id_token(key)).json()["access_token"])
    assert again["sub"] == claims["sub"]  # the same (issuer, subject) is the same local user
    # a local password login is impossible for a federated user (it has no password)
    assert identity.post("/v1/tokens", json={"grant_type": "password", "tenant": "tenant-fed", "username": "grace",
                                             "password": "anything-at-all", "audience": AUDIENCE}).status_code == 401


@pytest.mark.parametrize("change, reason", [
    ({"aud": "someone-else"}, "Audience doesn't match"),
    ({"iss": "https://evil.test"}, "Invalid issuer"),
    ({"exp": int(time.time()) - 600}, "Signature has expired"),
])
def test_id_tokens_for_another_client_issuer_or_expired_are_401(identity, provider, change, reason):
    key, _ = provider
    response = exchange(identity, id_token(key, **change))
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_subject_token"
    assert reason in response.json()["error"]["message"]


def test_an_id_token_signed_by_another_key_is_401(identity):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = exchange(identity, id_token(stranger))
    assert response.status_code == 401 and "Signature verification failed" in response.json()["error"]["message"]
    unknown_kid = exchange(identity, id_token(stranger, kid="idp-9"))
    assert unknown_kid.status_code == 401 and "idp-9" in unknown_kid.json()["error"]["message"]


def test_a_tenant_claim_that_is_missing_or_invalid_is_403(identity, provider):
    key, _ = provider
    response = exchange(identity, id_token(key, sub="ext-999", org="Not/A Tenant"))
    assert response.status_code == 403 and response.json()["error"]["code"] == "tenant_unknown"


def test_the_wrong_subject_token_type_is_400_naming_the_field(identity, provider):
    key, _ = provider
    response = exchange(identity, id_token(key), subject_token_type="urn:ietf:params:oauth:token-type:access_token")
    assert response.status_code == 400 and "subject_token_type" in response.json()["error"]["message"]


def test_without_federation_settings_the_exchange_is_refused(vault, postgres, tmp_path):
    with running(settings_for(vault, postgres, tmp_path)) as client:
        response = exchange(client, "a.b.c")
        assert response.status_code == 400 and response.json()["error"]["code"] == "unsupported_grant_type"
        assert EXCHANGE not in client.get("/.well-known/openid-configuration").json()["grant_types_supported"]
