"""Least-privilege Vault access for the consumers of platform secrets.

Every runtime secret of SomaAgentHub lives in Vault's KV v2 engine. Workloads never talk to
Vault: External Secrets Operator (ESO) copies secrets into Kubernetes Secrets. To keep one
compromised namespace from reading another's credentials, each *consumer* (one service
account of one service) gets

* its own Vault policy, which can read only ``<mount>/data/<namespace>/<service>/*`` (and the
  matching metadata), and
* its own Kubernetes-auth role, bound to exactly that service account in exactly that
  namespace and granting exactly that policy,

and ESO reaches Vault for that consumer through a ClusterSecretStore (``vault-<consumer>``)
restricted to the consumer's namespace and logging in as the consumer's service account.
ESO's own service account therefore needs no Vault access at all.

This module is deliberately pure (no Pulumi resources, no I/O): it only computes names,
policy documents and role parameters, so that the same values can be tested against a real
Vault/OpenBao server and then handed unchanged to ``pulumi_vault``.

Naming scheme (all derived, never typed by hand):

* KV path of a secret (mount-relative): ``<namespace>/<service>/<secret>``. This is what
  ``pulumi_vault.kv.SecretV2(name=...)`` and ESO's ``remoteRef.key`` take (ESO adds
  ``data/`` itself for a ``version: v2`` store).
* HTTP API paths: ``<mount>/data/<namespace>/<service>/<secret>`` and
  ``<mount>/metadata/<namespace>/<service>/<secret>``.
* Policy and role name: ``<namespace>-<service>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_MOUNT",
    "DEFAULT_TOKEN_TTL_SECONDS",
    "MIN_TOKEN_TTL_SECONDS",
    "VAULT_AUDIENCE",
    "RAFT_SNAPSHOT_API_PATH",
    "SNAPSHOT_POLICY",
    "SecretConsumer",
    "data_api_path",
    "metadata_api_path",
    "policy_hcl",
    "policy_name",
    "role_name",
    "role_settings",
    "snapshot_policy_hcl",
    "snapshot_role_settings",
    "validate_consumers",
    "validate_mount",
    "vault_paths",
    "writer_policy_for_paths",
    "writer_policy_hcl",
]

DEFAULT_MOUNT = "platform"
"""KV v2 mount that holds every platform secret (configurable per stack)."""

VAULT_AUDIENCE = "vault"
"""``aud`` claim the Kubernetes-auth roles require on the service-account JWT.

Binding an audience means a token minted for the Kubernetes API server (what every pod gets
mounted by default) cannot be replayed to log into Vault, and a token minted for Vault is
useless against the API server. The ClusterSecretStore must therefore request it:
``auth.kubernetes.serviceAccountRef.audiences: [VAULT_AUDIENCE]`` (ESO sends no audience of
its own otherwise, so the TokenRequest would get the API server's default audience and the
login would be refused).
"""

DEFAULT_TOKEN_TTL_SECONDS = 900
"""Lifetime of the Vault token ESO gets per login: long enough for one sync, short enough
that a leaked token is soon worthless. ESO logs in again whenever it needs a new one."""

MIN_TOKEN_TTL_SECONDS = 120
"""ESO treats a token with less than 60 s left as already expired (``checkToken``), so a TTL
at or below that would make it log in on every call; twice that is the floor we allow."""

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_LABEL_MAX = 63
_MOUNT_SEGMENT = re.compile(r"^[a-z0-9]([-_a-z0-9]*[a-z0-9])?$")


def _check_label(value: object, field: str, who: str) -> None:
    """Raise ValueError unless ``value`` is a DNS-1123 label.

    Labels contain no ``/``, ``.``, ``*`` or ``+``, so a validated name can never climb out of
    its own path prefix (``..``), add a path segment, or act as a Vault policy glob.
    """
    if not isinstance(value, str):
        raise ValueError(f"{who}: {field} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{who}: {field} must not be empty")
    if len(value) > _DNS1123_LABEL_MAX:
        raise ValueError(
            f"{who}: {field} {value!r} is longer than {_DNS1123_LABEL_MAX} characters"
        )
    if not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{who}: {field} {value!r} is not a DNS-1123 label "
            "(lowercase letters, digits and '-', starting and ending with a letter or digit)"
        )


@dataclass(frozen=True)
class SecretConsumer:
    """One service account that consumes secrets of one service.

    ``service`` and ``namespace`` locate the secrets (``<namespace>/<service>/<secret>``);
    ``service_account`` is who may log into Vault to read them; ``secrets`` are the secret
    names under that prefix (used for the deployer's writer policy and ESO remote refs).

    Validation happens at construction so that a bad name fails the Pulumi program before any
    policy is written, with an error naming the consumer and the offending field.
    """

    service: str
    namespace: str
    service_account: str
    secrets: tuple[str, ...]
    shared_path: str | None = None
    """A mount-relative path an administrator writes (e.g. the off-cluster backup keys), which this
    consumer reads instead of its own folder; the program never writes or reads it."""

    def __post_init__(self) -> None:
        who = (
            f"SecretConsumer(service={self.service!r}, namespace={self.namespace!r})"
        )
        _check_label(self.service, "service", who)
        _check_label(self.namespace, "namespace", who)
        _check_label(self.service_account, "service_account", who)
        if isinstance(self.secrets, str) or not isinstance(self.secrets, tuple):
            # A bare string would silently iterate as characters; a list would make the
            # frozen dataclass unhashable. Both are caller mistakes worth a clear message.
            raise ValueError(
                f"{who}: secrets must be a tuple of names, got {type(self.secrets).__name__}"
            )
        if not self.secrets:
            raise ValueError(f"{who}: secrets must not be empty")
        if self.shared_path is not None:
            if len(self.secrets) != 1:
                raise ValueError(f"{who}: a consumer of the shared path {self.shared_path!r} reads exactly one secret")
            if not re.match(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(/[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", self.shared_path):
                raise ValueError(f"{who}: shared_path {self.shared_path!r} must be an exact KV path such as backups/offsite")
        seen: set[str] = set()
        for name in self.secrets:
            _check_label(name, "secrets", who)
            if name in seen:
                raise ValueError(f"{who}: secrets contains {name!r} more than once")
            seen.add(name)

    @property
    def prefix(self) -> str:
        """Mount-relative path prefix owned by this consumer, always ending in ``/``.

        The trailing slash is what separates ``core/api/`` from ``core/api-admin/``: a glob
        ``core/api*`` would match both.
        """
        return f"{self.namespace}/{self.service}/"


def validate_mount(mount: str) -> str:
    """Return ``mount`` if it is a safe KV mount path, else raise ValueError naming ``mount``.

    The mount is interpolated into policy paths, so it must not contain globs (``*``, ``+``),
    quotes, ``..`` or leading/trailing slashes. Nested mounts (``kv/platform``) are allowed.
    """
    if not isinstance(mount, str) or not mount:
        raise ValueError(f"mount must be a non-empty string, got {mount!r}")
    for segment in mount.split("/"):
        if not _MOUNT_SEGMENT.match(segment):
            raise ValueError(
                f"mount {mount!r} is not a plain mount path (segments of lowercase letters, "
                "digits, '-' and '_', separated by single '/', no leading or trailing '/')"
            )
    return mount


def validate_consumers(consumers: Iterable[SecretConsumer]) -> tuple[SecretConsumer, ...]:
    """Check that a set of consumers can coexist without sharing access; return them.

    Raises ValueError when two consumers

    * own the same ``<namespace>/<service>`` prefix: both policies would grant the same
      secrets, so the isolation between the two service accounts would be illusory;
    * map to the same policy/role name (``a-b``/``c`` and ``a``/``b-c`` both give
      ``a-b-c``): the second Vault policy would overwrite the first.
    """
    result = tuple(consumers)
    by_prefix: dict[str, SecretConsumer] = {}
    by_name: dict[str, SecretConsumer] = {}
    for consumer in result:
        if not isinstance(consumer, SecretConsumer):
            raise ValueError(f"consumers must be SecretConsumer, got {type(consumer).__name__}")
        other = by_prefix.get(consumer.prefix)
        if other is not None:
            raise ValueError(
                f"consumers {other!r} and {consumer!r} share the secret path prefix "
                f"{consumer.prefix!r}"
            )
        by_prefix[consumer.prefix] = consumer
        name = policy_name(consumer)
        other = by_name.get(name)
        if other is not None:
            raise ValueError(
                f"consumers {other!r} and {consumer!r} both map to the policy/role name "
                f"{name!r}"
            )
        by_name[name] = consumer
    return result


def policy_name(consumer: SecretConsumer) -> str:
    """Name of the consumer's Vault policy: ``<namespace>-<service>``.

    Stable (derived only from where the secrets live, not from the service account, so
    renaming the account does not orphan the policy) and DNS-safe, so the same string can be
    reused in Kubernetes object names such as the ``vault-<consumer>`` ClusterSecretStore.
    Use :func:`validate_consumers` on the full set to rule out collisions.
    """
    return f"{consumer.namespace}-{consumer.service}"


def role_name(consumer: SecretConsumer) -> str:
    """Name of the consumer's Kubernetes-auth role; the same as its policy name.

    One name for both keeps the mapping policy ↔ role ↔ ClusterSecretStore obvious in audits.
    """
    return policy_name(consumer)


def vault_paths(consumer: SecretConsumer) -> dict[str, str]:
    """Map each secret name to its mount-relative KV path ``<namespace>/<service>/<secret>``.

    That path is what the deployer writes (``pulumi_vault.kv.SecretV2(mount=..., name=path)``)
    and what an ExternalSecret puts in ``remoteRef.key`` for a KV v2 store whose
    ``provider.vault.path`` is the mount; both sides derive it from here, so they cannot drift.
    """
    if consumer.shared_path is not None:
        return {consumer.secrets[0]: consumer.shared_path}
    return {name: f"{consumer.prefix}{name}" for name in consumer.secrets}


def data_api_path(mount: str, path: str) -> str:
    """HTTP API path of a KV v2 secret's data: ``<mount>/data/<path>``."""
    return f"{validate_mount(mount)}/data/{path}"


def metadata_api_path(mount: str, path: str) -> str:
    """HTTP API path of a KV v2 secret's metadata: ``<mount>/metadata/<path>``."""
    return f"{validate_mount(mount)}/metadata/{path}"


def _hcl_block(path: str, capabilities: Iterable[str]) -> str:
    caps = ", ".join(f'"{c}"' for c in capabilities)
    return f'path "{path}" {{\n  capabilities = [{caps}]\n}}\n'


def policy_hcl(consumer: SecretConsumer, mount: str = DEFAULT_MOUNT) -> str:
    """Vault policy (HCL) that lets ``consumer`` read its own secrets and nothing else.

    * ``read`` on ``<mount>/data/<ns>/<service>/*``: fetch the current (or a given) version,
      which is all ESO needs for ``remoteRef``;
    * ``read`` and ``list`` on ``<mount>/metadata/<ns>/<service>/*``: ESO reads metadata for
      ``metadataPolicy: Fetch`` and lists for ``dataFrom.find``; listing is confined to the
      consumer's own folder (a LIST of ``.../<service>/`` matches the glob).

    No create/update/patch/delete: the consumer can never alter or destroy a credential, and a
    compromised consumer cannot plant values for others. The glob ends after the ``/`` that
    closes the consumer's prefix, so ``core/api`` does not match ``core/api-admin``. Anything
    not listed is refused by Vault's default deny. The token Vault issues at login also
    carries Vault's ``default`` policy, which only covers the token itself (lookup, renew,
    revoke - ESO uses lookup-self and revoke-self) and the per-token cubbyhole, never KV.
    """
    validate_mount(mount)
    if consumer.shared_path is not None:
        return (
            f"# Policy {policy_name(consumer)}: read-only access for service account "
            f"{consumer.namespace}/{consumer.service_account}\n"
            f"# to the administrator-written secret {consumer.shared_path} only. Generated by "
            "components/core/secrets/vault_access.py.\n"
            "# Everything not granted here is denied by default.\n"
            + _hcl_block(data_api_path(mount, consumer.shared_path), ["read"])
            + "\n"
            + _hcl_block(metadata_api_path(mount, consumer.shared_path), ["read"])
        )
    prefix = consumer.prefix
    return (
        f"# Policy {policy_name(consumer)}: read-only access for service account "
        f"{consumer.namespace}/{consumer.service_account}\n"
        f"# to the secrets of {consumer.namespace}/{consumer.service}. Generated by "
        "components/core/secrets/vault_access.py.\n"
        "# Everything not granted here is denied by default.\n"
        + _hcl_block(f"{mount}/data/{prefix}*", ["read"])
        + "\n"
        + _hcl_block(f"{mount}/metadata/{prefix}*", ["read", "list"])
    )


def role_settings(
    consumer: SecretConsumer,
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS,
    *,
    audience: str | None = VAULT_AUDIENCE,
) -> dict[str, Any]:
    """Parameters of the consumer's Kubernetes-auth role.

    The keys are exactly the keyword arguments of ``pulumi_vault.kubernetes.AuthBackendRole``
    (the lead adds ``backend=<auth mount>``)::

        AuthBackendRole(f"vault-role-{role_name(c)}", backend=k8s_auth.path, **role_settings(c))

    and, without ``role_name``, also the JSON body of ``auth/<mount>/role/<role_name>``.

    Why each value:

    * ``bound_service_account_names`` / ``..._namespaces``: one account in one namespace, so
      no other workload - not even another account in the same namespace - can use the role;
    * ``token_policies``: only the consumer's own policy;
    * ``token_ttl`` = ``token_max_ttl``: the token cannot be renewed beyond its first
      lifetime; ESO simply logs in again;
    * ``token_type="service"``: ESO revokes its token when done and reuses valid ones only
      if they are service tokens (batch tokens can be neither looked up for reuse nor
      revoked);
    * ``audience``: see :data:`VAULT_AUDIENCE`; pass ``None`` to omit (not recommended).
    """
    return _role(role_name(consumer), consumer.service_account, consumer.namespace, policy_name(consumer),
                 token_ttl_seconds, audience, token_type="service")


def _role(name: str, service_account: str, namespace: str, policy: str, token_ttl_seconds: int,
          audience: str | None, *, token_type: str, no_default_policy: bool = False) -> dict[str, Any]:
    if (
        isinstance(token_ttl_seconds, bool)
        or not isinstance(token_ttl_seconds, int)
        or token_ttl_seconds < MIN_TOKEN_TTL_SECONDS
    ):
        raise ValueError(
            f"token_ttl_seconds must be an integer >= {MIN_TOKEN_TTL_SECONDS}, "
            f"got {token_ttl_seconds!r}"
        )
    settings: dict[str, Any] = {
        "role_name": name,
        "bound_service_account_names": [service_account],
        "bound_service_account_namespaces": [namespace],
        "token_policies": [policy],
        "token_ttl": token_ttl_seconds,
        "token_max_ttl": token_ttl_seconds,
        "token_type": token_type,
    }
    if no_default_policy:
        settings["token_no_default_policy"] = True
    if audience is not None:
        if not isinstance(audience, str) or not audience:
            raise ValueError(f"audience must be a non-empty string or None, got {audience!r}")
        settings["audience"] = audience
    return settings


RAFT_SNAPSHOT_API_PATH = "sys/storage/raft/snapshot"
"""Vault's Raft snapshot endpoint: ``GET`` streams a snapshot, ``POST`` restores one (and
``sys/storage/raft/snapshot-force`` restores one taken with other unseal keys)."""

SNAPSHOT_POLICY = "raft-snapshot"
"""Name of the snapshot-only policy, and of the Kubernetes-auth role that grants it (consumer
policies are ``<namespace>-<service>``; ``Secrets`` refuses a consumer whose name would be this)."""


def snapshot_policy_hcl() -> str:
    """Vault policy (HCL) that can take a Raft snapshot and do nothing else.

    ``read`` on ``sys/storage/raft/snapshot`` is what ``GET`` needs (``vault operator raft snapshot
    save``). A restore is a ``POST`` (``update``) on the same path or on ``.../snapshot-force``:
    neither is granted, so the job's token can copy Vault's data out but never overwrite it. A
    snapshot holds every secret (encrypted with Vault's keyring), which is why only one service
    account may log in with this policy (:func:`snapshot_role_settings`).
    """
    return (
        f"# Policy {SNAPSHOT_POLICY}: take Raft snapshots, nothing else (no restore, no secrets).\n"
        "# Generated by components/core/secrets/vault_access.py. Everything not granted here is denied by default.\n"
        + _hcl_block(RAFT_SNAPSHOT_API_PATH, ["read"])
    )


def snapshot_role_settings(
    namespace: str,
    service_account: str,
    token_ttl_seconds: int = DEFAULT_TOKEN_TTL_SECONDS,
    *,
    audience: str = VAULT_AUDIENCE,
) -> dict[str, Any]:
    """The Kubernetes-auth role of the snapshot job: ``pulumi_vault.kubernetes.AuthBackendRole``
    keyword arguments (and, without ``role_name``, the body of ``auth/<mount>/role/<name>``).

    Bound to exactly ``service_account`` in ``namespace`` with the ``vault`` audience, like every
    consumer role, but stricter in two ways: ``token_no_default_policy`` leaves the token with
    :data:`SNAPSHOT_POLICY` alone (not even ``lookup-self`` or a cubbyhole), and the token is a
    ``batch`` token, which Vault does not persist: a job logging in every hour writes no token
    entries into the Raft log it snapshots, and its token expires rather than being revoked.
    """
    who = f"snapshot role ({namespace}/{service_account})"
    _check_label(namespace, "namespace", who)
    _check_label(service_account, "service_account", who)
    return _role(SNAPSHOT_POLICY, service_account, namespace, SNAPSHOT_POLICY, token_ttl_seconds, audience,
                 token_type="batch", no_default_policy=True)


def writer_policy_hcl(mount: str, consumers: Iterable[SecretConsumer]) -> str:
    """Policy (HCL) for the Pulumi deployer that writes the generated credentials.

    Grants ``create`` and ``update`` on the exact data path of every declared secret of every
    listed consumer, and nothing else: no read (the deployer generated the values; it need not
    read anyone's secrets back), no list, no delete, no metadata, no globs - a secret that is
    not declared cannot be written, so a compromised deploy token cannot plant values at
    undeclared paths or under other consumers.

    Consequences for the caller (``pulumi_vault``): create ``kv.SecretV2`` with
    ``disable_read=True`` and no ``custom_metadata`` (otherwise the provider reads back / writes
    metadata and gets 403), configure the provider with ``skip_child_token=True`` (creating a
    child token needs ``auth/token/create``), and expect deleting or replacing a secret to need
    ``delete`` on its data path, which this policy deliberately does not grant.
    """
    validate_mount(mount)
    checked = validate_consumers(consumers)
    if not checked:
        raise ValueError("consumers must not be empty: a writer policy with no path is useless")
    paths = [path for consumer in checked if consumer.shared_path is None for path in vault_paths(consumer).values()]
    return writer_policy_for_paths(mount, paths, ", ".join(sorted(policy_name(c) for c in checked)))


def writer_policy_for_paths(mount: str, paths: Iterable[str], whose: str = "") -> str:
    """The writer policy for mount-relative KV ``paths`` (what :func:`writer_policy_hcl` grants for
    its consumers); ``tools.deployer_policy`` calls it with the paths a rendered stack writes."""
    validate_mount(mount)
    api_paths = sorted({data_api_path(mount, path) for path in paths})
    if not api_paths:
        raise ValueError("paths must not be empty: a writer policy with no path is useless")
    if any(".." in p.split("/") or "*" in p or "+" in p for p in api_paths):
        raise ValueError(f"writer paths must be exact (no globs, no '..'): {api_paths}")
    header = (
        "# Policy for the Pulumi deployer: create/update the declared secrets"
        + (f" of {whose}" if whose else "")
        + ".\n# Generated by components/core/secrets/vault_access.py. "
        "Everything not granted here is denied by default.\n"
    )
    return header + "\n".join(_hcl_block(p, ["create", "update"]) for p in api_paths)
