"""identity's API against real OpenBao (transit signing) and PostgreSQL servers."""

from __future__ import annotations

import itertools
import time
import uuid

import pytest

from soma_identity import db

from identity_fixtures import AUDIENCE, ISSUER, running, settings_for, verify_independently

tenants = (f"tenant-{n}" for n in itertools.count())
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def identity(vault, postgres, tmp_path_factory):
    settings = settings_for(vault, postgres, tmp_path_factory.mktemp("secrets"))
    with running(settings) as client:
        yield client


@pytest.fixture
def tenant(identity):
    """A fresh tenant with an admin user; yields (tenant, admin bearer headers)."""
    name = next(tenants)
    store = identity.app.state.tokens.store
    store.create_principal(name, "user", "admin", PASSWORD, ["identity:admin", "agents:read"])
    token = login(identity, name, "admin").json()["access_token"]
    return name, {"Authorization": f"Bearer {token}"}


def login(client, tenant, username, password=PASSWORD, **extra):
    return client.post("/v1/tokens", json={"grant_type": "password", "tenant": tenant, "username": username,
                                           "password": password, "audience": AUDIENCE, **extra})


def error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and body["request_id"] == response.headers["x-request-id"]
    return body["message"]


def test_a_user_gets_a_short_lived_token_that_verifies_with_the_jwks_alone(identity, tenant):
    name, _ = tenant
    response = login(identity, name, "admin", scope="agents:read")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 120 and body["refresh_token"]
    claims = verify_independently(identity, body["access_token"])
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE and claims["tenant"] == name
    assert claims["scope"] == "agents:read" and claims["principal_type"] == "user" and claims["name"] == "admin"
    assert claims["exp"] - claims["iat"] == 120
    assert identity.get("/.well-known/jwks.json").headers["cache-control"] == "public, max-age=0"


def test_bad_logins_are_401_without_saying_which_part_was_wrong(identity, tenant):
    name, _ = tenant
    wrong_password = error(login(identity, name, "admin", "nope"), 401, "invalid_credentials")
    unknown_user = error(login(identity, name, "nobody"), 401, "invalid_credentials")
    assert wrong_password == unknown_user
    assert login(identity, name, "admin", "nope").headers["www-authenticate"] == 'Bearer error="invalid_credentials"'


def test_bad_requests_are_400_naming_the_field(identity, tenant):
    name, _ = tenant
    assert "audience: 'elsewhere' is not one of soma-api, soma-internal" in error(
        login(identity, name, "admin", audience="elsewhere"), 400, "invalid_request")
    assert "body.password.password: Field required" in error(identity.post("/v1/tokens", json={
        "grant_type": "password", "tenant": name, "username": "admin", "audience": AUDIENCE}), 400, "invalid_request")
    assert "body.password.tenant: String should match pattern" in error(
        login(identity, "Not A Tenant", "admin"), 400, "invalid_request")
    assert "body: Input tag 'magic' found using 'grant_type' does not match" in error(
        identity.post("/v1/tokens", json={"grant_type": "magic"}), 400, "invalid_request")


def test_a_scope_the_principal_does_not_have_is_403(identity, tenant):
    name, _ = tenant
    assert "agents:write" in error(login(identity, name, "admin", scope="agents:read agents:write"), 403,
                                   "scope_not_allowed")


def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_whole_login(identity, tenant):
    name, _ = tenant
    first = login(identity, name, "admin").json()["refresh_token"]
    refreshed = identity.post("/v1/tokens", json={"grant_type": "refresh_token", "refresh_token": first,
                                                  "scope": "agents:read"})
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()["refresh_token"]
    assert second != first and verify_independently(identity, refreshed.json()["access_token"])["scope"] == "agents:read"
    assert "reused" in error(identity.post("/v1/tokens", json={"grant_type": "refresh_token", "refresh_token": first}),
                             401, "invalid_grant")
    # the thief replayed the old token: the legitimate newer token is revoked as well
    assert "revoked" in error(identity.post("/v1/tokens", json={"grant_type": "refresh_token", "refresh_token": second}),
                              401, "invalid_grant")
    # a refresh cannot widen the grant
    third = login(identity, name, "admin", scope="agents:read").json()["refresh_token"]
    error(identity.post("/v1/tokens", json={"grant_type": "refresh_token", "refresh_token": third,
                                            "scope": "identity:admin"}), 403, "scope_not_allowed")


def test_revocation_of_refresh_and_access_tokens(identity, tenant):
    name, admin = tenant
    gateway = identity.post("/v1/service-accounts", headers=admin, json={
        "tenant": name, "name": "gateway", "kind": "workflow", "scopes": ["identity:introspect"]}).json()
    gateway_token = identity.post("/v1/tokens", json={
        "grant_type": "client_credentials", "client_id": gateway["client_id"], "client_secret": gateway["client_secret"],
        "audience": "soma-internal"}).json()["access_token"]
    introspector = {"Authorization": f"Bearer {gateway_token}"}

    issued = login(identity, name, "admin").json()
    assert identity.post("/v1/tokens/revoke", json={"token": issued["refresh_token"]}).json() == {"revoked": True}
    error(identity.post("/v1/tokens", json={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}),
          401, "invalid_grant")
    assert identity.post("/v1/tokens/revoke", json={"token": "never-issued"}).json() == {"revoked": False}

    live = identity.post("/v1/tokens/introspect", headers=introspector, json={"token": issued["access_token"]}).json()
    assert live["active"] is True and live["tenant"] == name
    assert identity.post("/v1/tokens/revoke", json={"token": issued["access_token"]}).json() == {"revoked": True}
    dead = identity.post("/v1/tokens/introspect", headers=introspector, json={"token": issued["access_token"]}).json()
    assert dead == {"active": False, "reason": "token revoked"}
    error(identity.get(f"/v1/principals/{uuid.uuid4()}", headers={"Authorization": f"Bearer {issued['access_token']}"}),
          401, "invalid_token")
    # introspection itself needs its scope
    error(identity.post("/v1/tokens/introspect", headers=admin, json={"token": gateway_token}), 403, "insufficient_scope")


def test_service_accounts_for_agents_and_workflows(identity, tenant):
    name, admin = tenant
    created = identity.post("/v1/service-accounts", headers=admin, json={
        "tenant": name, "name": "planner", "kind": "agent", "scopes": ["agents:run", "memory:read"]})
    assert created.status_code == 201, created.text
    account = created.json()
    assert account["kind"] == "agent" and account["client_id"] == account["id"] and len(account["client_secret"]) >= 40
    issued = identity.post("/v1/tokens", json={"grant_type": "client_credentials", "client_id": account["client_id"],
                                               "client_secret": account["client_secret"], "audience": AUDIENCE,
                                               "scope": "agents:run"}).json()
    assert "refresh_token" not in issued  # service accounts authenticate again instead
    claims = verify_independently(identity, issued["access_token"])
    assert claims["principal_type"] == "agent" and claims["sub"] == account["id"] and claims["scope"] == "agents:run"

    error(identity.post("/v1/tokens", json={"grant_type": "client_credentials", "client_id": account["client_id"],
                                            "client_secret": "guess", "audience": AUDIENCE}), 401, "invalid_client")
    assert "already has a principal named 'planner'" in error(identity.post("/v1/service-accounts", headers=admin, json={
        "tenant": name, "name": "planner", "kind": "workflow"}), 409, "already_exists")

    disabled = identity.post(f"/v1/principals/{account['id']}/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["disabled"] is True
    error(identity.post("/v1/tokens", json={"grant_type": "client_credentials", "client_id": account["client_id"],
                                            "client_secret": account["client_secret"], "audience": AUDIENCE}),
          403, "principal_disabled")


def test_principal_administration_needs_a_token_the_scope_and_the_same_tenant(identity, tenant):
    name, admin = tenant
    other, other_admin = next(tenants), None
    identity.app.state.tokens.store.create_principal(other, "user", "admin", PASSWORD, ["identity:admin"])
    other_admin = {"Authorization": f"Bearer {login(identity, other, 'admin').json()['access_token']}"}
    reader = {"Authorization": f"Bearer {login(identity, name, 'admin', scope='agents:read').json()['access_token']}"}
    new_user = {"tenant": name, "username": "ada", "password": PASSWORD, "scopes": ["agents:read"]}

    assert error(identity.post("/v1/users", json=new_user), 401, "missing_token")
    error(identity.post("/v1/users", json=new_user, headers={"Authorization": "Bearer not.a.jwt"}), 401, "invalid_token")
    error(identity.post("/v1/users", json=new_user, headers=reader), 403, "insufficient_scope")
    error(identity.post("/v1/users", json=new_user, headers=other_admin), 403, "tenant_mismatch")
    assert "body.password: at least 12 characters" in error(
        identity.post("/v1/users", json={**new_user, "password": "short"}, headers=admin), 400, "invalid_request")
    created = identity.post("/v1/users", json=new_user, headers=admin)
    assert created.status_code == 201 and created.json()["name"] == "ada"
    error(identity.post("/v1/users", json=new_user, headers=admin), 409, "already_exists")
    assert login(identity, name, "ada").status_code == 200

    assert identity.get(f"/v1/principals/{created.json()['id']}", headers=admin).json()["scopes"] == ["agents:read"]
    error(identity.get(f"/v1/principals/{created.json()['id']}", headers=other_admin), 404, "not_found")  # not revealed
    error(identity.get(f"/v1/principals/{uuid.uuid4()}", headers=admin), 404, "not_found")
    assert "path.principal_id" in error(identity.get("/v1/principals/42", headers=admin), 400, "invalid_request")


def test_passwords_are_stored_as_argon2id_hashes(identity, tenant):
    name, _ = tenant
    with identity.app.state.tokens.store.pool.connection() as conn:
        row = conn.execute("SELECT password_hash FROM principals WHERE tenant = %s AND name = 'admin'", (name,)).fetchone()
    assert row["password_hash"].startswith("$argon2id$v=19$") and PASSWORD not in row["password_hash"]


def test_readiness_checks_postgresql_and_the_vault_key(identity):
    ready = identity.get("/readyz").json()
    assert {c["name"]: c["ok"] for c in ready["checks"]} == {"postgresql": True, "vault-signing-key": True}


def test_migrations_are_recorded_and_run_once(identity, postgres):
    import psycopg
    from psycopg.rows import dict_row
    with psycopg.connect(postgres, autocommit=True, row_factory=dict_row) as conn:  # the pool's row factory
        assert db.migrate(conn) == []  # the app applied them at start-up
        assert [r["version"] for r in conn.execute("SELECT version FROM identity_schema_migrations")] == [1]


def test_rotation_through_the_running_service_then_retirement_rejects_old_tokens(identity, tenant):
    name, _ = tenant
    tokens = identity.app.state.tokens
    gateway = tokens.store.create_principal(name, "workflow", "gw", "s3cret-s3cret-s3cret", ["identity:introspect"])
    introspector = {"Authorization": "Bearer " + tokens.issue(gateway, AUDIENCE, ("identity:introspect",))["access_token"]}
    old = login(identity, name, "admin").json()["access_token"]
    version = tokens.signer.rotate()
    rotated_at = time.time()
    jwks = identity.get("/.well-known/jwks.json").json()
    assert f"{tokens.signer.key_name}-v{version}" in [k["kid"] for k in jwks["keys"]] and len(jwks["keys"]) >= 2
    new = login(identity, name, "admin").json()["access_token"]
    assert verify_independently(identity, old) and verify_independently(identity, new)
    assert identity.post("/v1/tokens/introspect", headers=introspector, json={"token": old}).json()["active"] is True

    tokens.signer.retire(tokens.settings.key_grace_seconds, now=rotated_at + tokens.settings.key_grace_seconds + 1)
    introspector = {"Authorization": "Bearer " + tokens.issue(gateway, AUDIENCE, ("identity:introspect",))["access_token"]}
    refused = identity.post("/v1/tokens/introspect", headers=introspector, json={"token": old}).json()
    assert refused["active"] is False and "unknown or retired" in refused["reason"]
    assert verify_independently(identity, new)
    with pytest.raises(StopIteration):  # the edge cannot find the old kid any more
        verify_independently(identity, old)


def test_with_vault_unreachable_readiness_fails_and_token_routes_answer_503(vault, postgres, tmp_path):
    from fastapi.testclient import TestClient

    from soma_identity.app import build_app
    from identity_fixtures import settings_for

    dead_vault = ("http://127.0.0.1:9", vault[1])  # the discard port: nothing answers
    settings = settings_for(dead_vault, postgres, tmp_path, readiness_timeout_seconds="5")
    with TestClient(build_app(settings, configure_logging=False)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "vault-signing-key failing" in ready.json()["error"]["message"]
        assert {c["name"]: c["ok"] for c in ready.json()["checks"]} == {"postgresql": True, "vault-signing-key": False}
        assert error(client.get("/.well-known/jwks.json"), 503, "vault_unavailable")
