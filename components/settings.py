"""Typed stack settings: the only door through which configuration enters the program.

`load()` reads every ``somaagenthub:*`` key of the stack, validates the whole tree against the
dataclasses below and either returns one frozen :class:`PlatformSettings` or raises
:class:`SettingsError` listing every problem with its key. ``__main__.py`` calls it before any
resource exists, so a bad stack file never half-applies.

Stack files hold sizing and switches only. Secrets are generated at deploy time (pulumi-random)
and stored in Vault; a ``secure:`` value in a stack file is refused.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit
from typing import Any, Literal, Mapping

from components.config_schema import (
    CRON,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    SettingsError,
    camel,
    count,
    cpu,
    DURATION as DURATION_TEXT,
    duration,
    memory,
    read,
    rule,
)

PROJECT = "somaagenthub"
PHASES = ("core", "mesh", "governance", "agents", "ops")
PHASE_NEEDS: Mapping[str, tuple[str, ...]] = {
    "core": (),
    "mesh": ("core",),
    "governance": ("core", "mesh"),
    "agents": ("core", "mesh", "governance"),
    "ops": ("core",),
}
SUPPORTED_KUBERNETES = ("1.31", "1.32", "1.33", "1.34")


def _registry(value: str) -> str | None:
    if value == "upstream":
        return None
    host = value.split("/", 1)[0]
    if "://" in value or not DNS_SUBDOMAIN.match(host.split(":", 1)[0]) or value.endswith("/"):
        return "must be 'upstream' or a registry host with optional path, such as registry.soma.internal/mirror"
    return None


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container; the kit refuses containers without them."""

    cpu_request: str = cpu()
    memory_request: str = memory()
    cpu_limit: str = cpu()
    memory_limit: str = memory()


@dataclass(frozen=True)
class Quota:
    """ResourceQuota for one namespace: the ceiling of everything scheduled there."""

    requests_cpu: str = cpu()
    requests_memory: str = memory()
    limits_cpu: str = cpu()
    limits_memory: str = memory()
    pods: int = count(1, 2000)
    storage: str = memory()
    persistent_volume_claims: int = count(0, 500)


@dataclass(frozen=True)
class NamespaceSettings:
    """One namespace of a phase: its name and its resource ceiling."""

    name: str = field(metadata=rule(pattern=DNS_LABEL, pattern_hint="a DNS-1123 label"))
    quota: Quota


@dataclass(frozen=True)
class ContainerDefaults:
    """LimitRange defaults applied to containers that do not say (charts, sidecars)."""

    cpu_request: str = cpu()
    memory_request: str = memory()
    cpu_limit: str = cpu()
    memory_limit: str = memory()
    max_cpu: str = cpu()
    max_memory: str = memory()


@dataclass(frozen=True)
class Phases:
    """Which phases this stack deploys."""

    core: bool
    mesh: bool
    governance: bool
    agents: bool
    ops: bool

    def enabled(self) -> tuple[str, ...]:
        return tuple(p for p in PHASES if getattr(self, p))


@dataclass(frozen=True)
class Server:
    """A replicated server with persistent storage."""

    replicas: int = count(1, 9)
    storage: str = memory()
    resources: Resources


CRONJOB_SCHEDULE = re.compile(r"^\S+(\s+\S+){4}$")


def cronjob_schedule() -> Any:
    return field(metadata=rule(pattern=CRONJOB_SCHEDULE, pattern_hint="a five-field cron expression (minute first, UTC), as a Kubernetes CronJob expects"))


@dataclass(frozen=True)
class QdrantSettings(Server):
    """``snapshot_schedule``: when the snapshot CronJob copies a full-storage snapshot to the backup target."""

    snapshot_schedule: str = cronjob_schedule()


def _vault_address(value: str) -> str | None:
    if not re.match(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$", value):
        return "must be the URL the deployer reaches Vault at, such as http://127.0.0.1:8200 (a port-forward)"
    return None


CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def _kubernetes_cron(value: str) -> str | None:
    """A CronJob schedule: five numeric fields (minute hour day-of-month month day-of-week) of
    numbers, ``*``, ranges, lists and steps.

    A CronJob takes five fields: six (seconds first, as CloudNativePG's backupSchedule takes) or a
    ``TZ=`` prefix (the CronJob's ``timeZone`` says that) are refused here, naming what is wrong,
    rather than by the API server at deploy time. Names (``MON``) and macros (``@daily``) are
    refused too: a number says the same thing.
    """
    hint = "a five-field cron schedule (minute hour day-of-month month day-of-week), such as 17 * * * *"
    fields = value.split()
    if any(f.upper().startswith(("TZ=", "CRON_TZ=")) for f in fields):
        return f"must be {hint}; the time zone is not part of the schedule"
    if len(fields) != len(CRON_FIELDS):
        extra = " (no seconds field, unlike postgres.backupSchedule)" if len(fields) == 6 else ""
        return f"must be {hint}; got {len(fields)} field{'' if len(fields) == 1 else 's'}{extra}"
    for text, (name, low, high) in zip(fields, CRON_FIELDS):
        for part in text.split(","):
            base, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                return f"must be {hint}; the {name} step {step!r} is not a positive number"
            if base == "*":
                continue
            for bound in base.split("-", 1):
                if not bound.isdigit() or not low <= int(bound) <= high:
                    return f"must be {hint}; the {name} {bound!r} is not within {low}-{high}"
    return None


NARROWEST_HOST_NETWORK_PREFIX = 8


def _cidr(value: str) -> str | None:
    """A network the platform opens host-network flows to (API server, kubelets): real and narrow.

    ``0.0.0.0/0`` would turn every "to the API server" egress into "to the internet", so any
    prefix shorter than /8 is refused, as is a CIDR with host bits set (a likely typo).
    """
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as err:
        return f"must be a CIDR such as 10.0.0.0/24 ({err})"
    if network.prefixlen < NARROWEST_HOST_NETWORK_PREFIX:
        return f"/{network.prefixlen} is too broad: name the cluster's own network, /{NARROWEST_HOST_NETWORK_PREFIX} or narrower"
    return None


SEAL_FIELDS: dict[str, tuple[str, ...]] = {
    "shamir": (),
    "transit": ("address", "key_name"),
    "awskms": ("region", "kms_key_id"),
    "gcpckms": ("project", "region", "key_ring", "crypto_key"),
    "azurekeyvault": ("tenant_id", "vault_name", "key_name"),
}
"""The fields each seal needs (Vault's seal stanzas of the same names)."""
SEAL_OPTIONAL: dict[str, tuple[str, ...]] = {
    "shamir": ("shamir_reason",),
    "transit": ("mount_path", "credentials_secret"),
    "awskms": ("credentials_secret",),
    "gcpckms": ("credentials_secret",),
    "azurekeyvault": ("credentials_secret",),
}
SEAL_ATTRIBUTES = ("address", "mount_path", "key_name", "region", "kms_key_id", "project", "key_ring", "crypto_key",
                   "tenant_id", "vault_name", "credentials_secret", "shamir_reason")


@dataclass(frozen=True)
class SealSettings:
    """How Vault unseals after a restart: by itself (``transit``: another Vault; ``awskms``, ``gcpckms``,
    ``azurekeyvault``: a cloud KMS) or by people entering key shares (``shamir``).

    No credential is written here: ``credentialsSecret`` names a Secret in Vault's namespace that
    the cluster administrator creates beforehand (keys: ``token`` for transit, ``AWS_ACCESS_KEY_ID``
    and ``AWS_SECRET_ACCESS_KEY``, ``credentials.json`` for GCP, ``AZURE_CLIENT_ID`` and
    ``AZURE_CLIENT_SECRET``); without it the cloud seals use the pod's workload identity. External
    Secrets cannot deliver it: Vault needs it before anything can be read from Vault.
    """

    type: Literal["shamir", "transit", "awskms", "gcpckms", "azurekeyvault"]
    address: str | None = field(default=None, metadata=rule(pattern=re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$"),
                                                                 pattern_hint="the https URL of the Vault that holds the transit key"))
    mount_path: str | None = None
    key_name: str | None = None
    region: str | None = None
    kms_key_id: str | None = None
    project: str | None = None
    key_ring: str | None = None
    crypto_key: str | None = None
    tenant_id: str | None = None
    vault_name: str | None = None
    credentials_secret: str | None = field(default=None, metadata=rule(pattern=DNS_SUBDOMAIN, pattern_hint="a Secret name"))
    shamir_reason: str | None = None
    """Why a highly available stack is unsealed by people: the waiver the settings require then."""

    def __post_init__(self) -> None:
        missing = [camel(f) for f in SEAL_FIELDS[self.type] if not getattr(self, f)]
        allowed = set(SEAL_FIELDS[self.type]) | set(SEAL_OPTIONAL[self.type])
        foreign = [camel(f) for f in SEAL_ATTRIBUTES if getattr(self, f) is not None and f not in allowed]
        problems = []
        if missing:
            problems.append(f"seal type '{self.type}' needs {', '.join(missing)}")
        if foreign:
            problems.append(f"{', '.join(foreign)} {'does' if len(foreign) == 1 else 'do'} not apply to seal type '{self.type}'")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class VaultSettings:
    """Vault: its sizing, how it runs, and the switch of its two-step bootstrap.

    ``mode``: ``dev`` runs one in-memory server that needs no init/unseal (a laptop cluster);
    ``raft`` runs the HA integrated-storage cluster with a TLS listener (anything shared).
    ``address`` is where the *deployer* reaches Vault (a port-forward URL), used only by the
    pulumi-vault provider. ``configure`` is false on the very first ``pulumi up`` of a stack,
    while Vault is not yet initialised and unsealed, and true ever after
    (docs/runbooks/core-secrets.md); nothing that needs Vault is built while it is false.
    """

    mode: Literal["dev", "raft"]
    replicas: int = count(1, 9)
    storage: str = memory()
    resources: Resources
    address: str = field(metadata=rule(check=_vault_address))
    configure: bool
    kv_mount: str = field(default="platform", metadata=rule(pattern=DNS_LABEL, pattern_hint="a KV mount name such as platform"))
    seal: SealSettings = field(default_factory=lambda: SealSettings(type="shamir"))
    snapshot_schedule: str | None = field(default=None, metadata=rule(check=_kubernetes_cron))
    """When the Raft snapshot CronJob runs (five-field cron, UTC); required in ``raft`` mode, where
    the snapshots go to the backup target and ``core.backups.maxAgeHours`` watches their age."""


@dataclass(frozen=True)
class Stateless:
    """A replicated server without storage."""

    replicas: int = count(1, 20)
    resources: Resources


@dataclass(frozen=True)
class PostgresSettings:
    instances: int = count(1, 9)
    storage: str = memory()
    wal_storage: str = memory()
    resources: Resources
    backup_schedule: str = field(metadata=rule(pattern=CRON, pattern_hint="a six-field cron expression (seconds first), as CloudNativePG expects"))
    backup_retention_days: int = count(1, 3650)


@dataclass(frozen=True)
class KafkaSettings:
    """``storage`` is each broker's log volume; ``controller_storage`` each dedicated KRaft
    controller's metadata volume (small: controllers keep only the metadata log). A single
    combined controller+broker node uses ``storage``."""

    controllers: int = count(1, 9)
    brokers: int = count(1, 30)
    storage: str = memory()
    controller_storage: str = memory()
    resources: Resources
    audit_partitions: int = count(1, 200)
    audit_retention_hours: int = count(1, 24 * 3650)


@dataclass(frozen=True)
class ClickHouseSettings:
    shards: int = count(1, 20)
    replicas: int = count(1, 9)
    storage: str = memory()
    resources: Resources
    audit_retention_days: int = count(1, 3000)  # monthly partitions: one insert may touch at most 100
    backup_schedule: str = cronjob_schedule()
    """When the backup CronJob runs BACKUP DATABASE audit to the backup target."""


@dataclass(frozen=True)
class MinioSettings:
    servers: int = count(1, 32)
    volumes_per_server: int = count(1, 16)
    volume_size: str = memory()
    resources: Resources
    backup_retention_days: int = count(1, 3650)


def _https_endpoint(value: str) -> str | None:
    if not re.match(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$", value):
        return "must be the S3 endpoint's https URL, such as https://s3.eu-central-1.amazonaws.com"
    return None


def _vault_path(value: str) -> str | None:
    if not re.match(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(/[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$", value):
        return "must be a KV path relative to the mount, such as backups/offsite (lowercase segments, no globs)"
    return None


@dataclass(frozen=True)
class OffsiteTarget:
    """An S3-compatible bucket outside the cluster that every backup stream writes to directly.

    The keys are not in the stack: an administrator writes ``access-key-id`` and
    ``secret-access-key`` to Vault at ``credentialsPath`` (under the KV mount), and each backup
    writer's namespace receives them through its own store (docs/runbooks/core-data.md,
    "Off-cluster backups"). ``egressCidr`` is the endpoint's address range: NetworkPolicies
    name addresses, not hosts, so the writers' egress is opened to it (port 443) and nowhere else.
    """

    endpoint: str = field(metadata=rule(check=_https_endpoint))
    bucket: str = field(metadata=rule(pattern=re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), pattern_hint="an S3 bucket name"))
    region: str = field(metadata=rule(pattern=DNS_LABEL, pattern_hint="an S3 region such as eu-central-1"))
    egress_cidr: str = field(metadata=rule(check=_cidr))
    credentials_path: str = field(default="backups/offsite", metadata=rule(check=_vault_path))


@dataclass(frozen=True)
class BackupSettings:
    """Where backups go and how old the newest one may get before an alert fires.

    Without ``offsite`` every stream lands in the in-cluster MinIO, which dies with the cluster it
    protects; a mandatory (prod) stack then needs ``inClusterReason``, the waiver saying why.
    """

    max_age_hours: int = count(1, 24 * 31)
    offsite: OffsiteTarget | None = None
    in_cluster_reason: str | None = None


@dataclass(frozen=True)
class CollectorSettings:
    replicas: int = count(1, 20)
    resources: Resources
    memory_limit_percentage: int = count(10, 95)
    memory_spike_percentage: int = count(5, 50)
    batch_size: int = count(1, 100000)
    batch_timeout: str = duration()


@dataclass(frozen=True)
class NodeLogSettings:
    """The node log agent: one OpenTelemetry Collector per node that reads every container's stdout
    and stderr from ``/var/log/pods`` (a read-only hostPath) and ships it to Loki.

    It runs in its own namespace (``core.namespaces.nodeLogs``), the only namespace whose Pod
    Security is weaker than restricted; ``resources`` size each node's agent, and its memory limiter
    and batch follow ``core.observability.collector``. Without this block no agent runs and only
    what workloads send over OTLP reaches Loki.
    """

    resources: Resources


@dataclass(frozen=True)
class PrometheusSettings:
    replicas: int = count(1, 5)
    retention: str = duration()
    storage: str = memory()
    resources: Resources
    alertmanager_replicas: int = count(1, 5)


@dataclass(frozen=True)
class LogTraceStoreSettings:
    """Loki or Tempo: single binary in dev, scalable in prod."""

    mode: Literal["single-binary", "scalable"]
    replicas: int = count(1, 9)
    retention: str = duration()
    storage: str = memory()
    resources: Resources


@dataclass(frozen=True)
class TempoSettings(LogTraceStoreSettings):
    """Tempo runs as one single-binary replica: the only Tempo chart vendored is the monolithic one.

    Its replicas do not coordinate (each would compact the shared bucket and keep its own recent
    traces), so ``mode: scalable`` and more than one replica are refused; a highly available stack
    states in ``singleReplicaReason`` why one Tempo is acceptable (docs/runbooks/observability.md,
    "Tempo in prod").
    """

    single_replica_reason: str | None = None


RECEIVER_FIELDS: dict[str, tuple[str, ...]] = {
    "webhook": (),
    "pagerduty": (),
    "email": ("to", "from_address", "smarthost"),
}
"""What each receiver type needs besides its egress; its credential is always in Vault (see ReceiverSettings)."""
RECEIVER_OPTIONAL: dict[str, tuple[str, ...]] = {"webhook": (), "pagerduty": (), "email": ("auth_username",)}
RECEIVER_ATTRIBUTES = ("to", "from_address", "smarthost", "auth_username")
SMARTHOST = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
EMAIL = re.compile(r"^[^@\s,]+@[A-Za-z0-9.-]+$")


@dataclass(frozen=True)
class ReceiverSettings:
    """One place Alertmanager notifies: ``webhook`` (a chat, a heartbeat service), ``pagerduty``
    (Events API v2) or ``email``.

    Nothing secret is written here. The credential (the webhook URL, which usually carries a token;
    the PagerDuty routing key; the SMTP password when ``authUsername`` is set) is written by an
    administrator to Vault under ``alertmanager.credentialsPath``, as the key named after the
    receiver, and reaches Alertmanager as a file (docs/runbooks/observability.md, "Alert receivers").
    ``egressCidr`` is where the receiver's endpoint lives: NetworkPolicies name addresses, not hosts,
    so Alertmanager's egress is opened to it on ``egressPort`` (the SMTP port for email, from
    ``smarthost``) and nowhere else.
    """

    type: Literal["webhook", "pagerduty", "email"]
    egress_cidr: str = field(metadata=rule(check=_cidr))
    egress_port: int = field(default=443, metadata=rule(minimum=1, maximum=65535))
    to: str | None = field(default=None, metadata=rule(pattern=EMAIL, pattern_hint="an email address"))
    from_address: str | None = field(default=None, metadata=rule(pattern=EMAIL, pattern_hint="an email address"))
    smarthost: str | None = field(default=None, metadata=rule(pattern=SMARTHOST, pattern_hint="host:port of the SMTP server"))
    auth_username: str | None = None

    def __post_init__(self) -> None:
        missing = [camel(f) for f in RECEIVER_FIELDS[self.type] if not getattr(self, f)]
        allowed = set(RECEIVER_FIELDS[self.type]) | set(RECEIVER_OPTIONAL[self.type])
        foreign = [camel(f) for f in RECEIVER_ATTRIBUTES if getattr(self, f) is not None and f not in allowed]
        problems = []
        if missing:
            problems.append(f"receiver type '{self.type}' needs {', '.join(missing)}")
        if foreign:
            problems.append(f"{', '.join(foreign)} {'does' if len(foreign) == 1 else 'do'} not apply to receiver type '{self.type}'")
        if self.type == "email" and self.smarthost and int(self.smarthost.rsplit(":", 1)[1]) != self.egress_port:
            problems.append(f"egressPort {self.egress_port} is not the smarthost's port {self.smarthost.rsplit(':', 1)[1]}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def has_credential(self) -> bool:
        """Whether Alertmanager reads a credential of this receiver from Vault (email: only with authUsername)."""
        return self.type != "email" or self.auth_username is not None


@dataclass(frozen=True)
class AlertmanagerSettings:
    """Where alerts go, by severity: ``critical`` pages (the receivers listed), ``warning`` goes to a
    team channel, ``info`` goes nowhere. ``heartbeat`` receives the always-firing Watchdog alert, so
    that a service outside the cluster notices when alerting itself stops.

    A mandatory (prod) stack must page someone and send a heartbeat, or say in ``noReceiverReason``
    why it does not. ``credentialsPath`` is the Vault KV path (under the mount) an administrator
    writes the receivers' credentials to, one key per receiver name.
    """

    receivers: Mapping[str, ReceiverSettings] = field(default_factory=dict)
    critical: tuple[str, ...] = ()
    warning: tuple[str, ...] = ()
    heartbeat: str | None = None
    credentials_path: str = field(default="alerting/receivers", metadata=rule(check=_vault_path))
    no_receiver_reason: str | None = None


@dataclass(frozen=True)
class ObservabilitySettings:
    collector: CollectorSettings
    prometheus: PrometheusSettings
    loki: LogTraceStoreSettings
    tempo: TempoSettings
    grafana: Stateless
    node_logs: NodeLogSettings | None = None
    alertmanager: AlertmanagerSettings = field(default_factory=AlertmanagerSettings)


@dataclass(frozen=True)
class CoreNamespaces:
    operators: NamespaceSettings
    secrets: NamespaceSettings
    data: NamespaceSettings
    observability: NamespaceSettings
    node_logs: NamespaceSettings | None = None
    """The node log agent's own namespace (Pod Security ``privileged``: it mounts ``/var/log/pods``);
    set exactly when ``core.observability.nodeLogs`` is."""


@dataclass(frozen=True)
class CoreSettings:
    namespaces: CoreNamespaces
    api_server_cidr: str = field(metadata=rule(check=_cidr))
    node_cidr: str = field(metadata=rule(check=_cidr))
    pod_cidr: str = field(metadata=rule(check=_cidr))
    """The cluster's pod network (the CNI's pod CIDR): the only addresses ClickHouse users accept."""
    operator_resources: Resources
    vault: VaultSettings
    external_secrets: Stateless
    cert_manager: Stateless
    """cert-manager's controller, webhook and CA injector: ``replicas`` pods of each, each container sized by
    ``resources`` (a controller that signs a few platform certificates needs far less than the data operators)."""
    postgres: PostgresSettings
    qdrant: QdrantSettings
    kafka: KafkaSettings
    clickhouse: ClickHouseSettings
    minio: MinioSettings
    backups: BackupSettings
    observability: ObservabilitySettings


@dataclass(frozen=True)
class PhaseNamespaces:
    """Namespaces of a phase that, so far, only lays its foundation."""

    namespaces: Mapping[str, NamespaceSettings]


URL = re.compile(r"^(https?|rediss?)://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")


@dataclass(frozen=True)
class ServiceEndpoint:
    """Something a first-party service calls that the platform does not run: its ``url`` and where it is, for the
    egress flow: ``namespace`` + ``pods`` (labels) inside the cluster, or ``cidr`` outside it."""

    url: str = field(metadata=rule(pattern=URL, pattern_hint="a URL such as redis://redis.soma-agents:6379/0"))
    namespace: str | None = field(default=None, metadata=rule(pattern=DNS_LABEL, pattern_hint="a namespace name"))
    pods: Mapping[str, str] = field(default_factory=dict)
    cidr: str | None = field(default=None, metadata=rule(check=_cidr))

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or {"http": 80, "https": 443, "redis": 6379, "rediss": 6379}[parts.scheme]


@dataclass(frozen=True)
class AgentService:
    """One first-party service of ``apps/`` deployed by the Agents phase (docs/agents-deploy.md).

    Off unless ``enabled``; enabling needs the service's image pinned in platform.lock.yaml ``apps`` (the release
    pipeline, ``make images-release``). ``replicas`` (a PodDisruptionBudget and spreading above 1), ``resources``.
    """

    resources: Resources
    enabled: bool = False
    replicas: int = field(default=1, metadata=rule(minimum=1, maximum=20))


@dataclass(frozen=True)
class IdentityService(AgentService):
    """identity: ``issuer`` and ``audiences`` default to ``mesh.edge.jwt``'s (what the edge verifies); the signing
    key ``signingKey`` lives in Vault's transit engine at ``transitMount``."""

    issuer: str | None = None
    audiences: tuple[str, ...] = ()
    transit_mount: str = field(default="transit", metadata=rule(pattern=DNS_LABEL, pattern_hint="a Vault mount path"))
    signing_key: str = field(default="identity-jwt", metadata=rule(pattern=DNS_LABEL, pattern_hint="a transit key name"))
    signing_algorithm: Literal["ES256", "RS256"] = "ES256"


@dataclass(frozen=True)
class GatewayService(AgentService):
    """gateway: ``redis`` meters the tenants' rate limits (required: the platform runs no Redis for the services;
    Argo CD's Redis is Argo CD's own); its password, if any, is kept by an administrator in Vault at
    ``redisPasswordPath`` (key ``password``). ``rate``/``burst``: each tenant's default budget."""

    redis: ServiceEndpoint | None = None
    redis_password_path: str | None = field(default=None, metadata=rule(check=_vault_path))
    rate: float = field(default=50, metadata=rule(minimum=0.001, maximum=1e6))
    burst: int = field(default=100, metadata=rule(minimum=1, maximum=1000000))


@dataclass(frozen=True)
class OrchestratorService(AgentService):
    """orchestrator: its database is the ``orchestrator`` database on the platform's PostgreSQL; ``model`` the
    OpenAI-compatible endpoint (required), ``modelName`` the model it serves, its key kept by an administrator in
    Vault at ``modelApiKeyPath`` (key ``api-key``)."""

    model: ServiceEndpoint | None = None
    model_name: str | None = None
    model_api_key_path: str | None = field(default=None, metadata=rule(check=_vault_path))


@dataclass(frozen=True)
class AgentServices:
    """The first-party services; a service left out is not deployed."""

    identity: IdentityService | None = None
    gateway: GatewayService | None = None
    orchestrator: OrchestratorService | None = None
    tools: AgentService | None = None
    memory: AgentService | None = None

    def enabled(self) -> tuple[str, ...]:
        return tuple(n for n in AGENT_SERVICES if (s := getattr(self, n)) is not None and s.enabled)


AGENT_SERVICES = ("identity", "gateway", "orchestrator", "tools", "memory")
"""Each a folder under apps/ and a key of platform.lock.yaml ``apps``."""


APPLICATION_FOLDER = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
"""A relative folder of the applications repository (``governance.argocd.applications.<name>.path``)."""


@dataclass(frozen=True)
class AgentDelivery:
    """How the services' application objects reach a cluster (docs/architecture/gitops.md, "Who owns what").

    ``mode``: ``pulumi`` registers every object of a service with the cluster (a stack without Argo CD anywhere);
    ``argocd`` registers the application kinds (Deployment, Service, PodDisruptionBudget...,
    ``projects.APPLICATION_KINDS``) with a provider that renders YAML into the applications repository's working
    copy instead, ``<checkout>/<path>/<environment>``, the folder the ApplicationSet syncs for that wave; everything
    the platform owns (ServiceAccounts, ExternalSecrets, Vault roles, flows) stays with the cluster. A stack with
    ``governance.argocd`` uses ``argocd``. ``environment``: this stack's promotion wave. ``checkout``: the working
    copy of ``governance.argocd.repository`` on the machine that runs ``pulumi up`` (relative to the project
    directory, or absolute). ``paths``: service -> its folder in that repository; a stack with Argo CD takes them
    from ``governance.argocd.applications`` (a path given here must be the same), a stack whose wave another
    stack's Argo CD drives (a spoke: dev and staging, prod's) names each enabled service's folder as that stack lists it.
    """

    mode: Literal["pulumi", "argocd"] = "pulumi"
    environment: Literal["dev", "staging", "prod"] | None = None
    checkout: str | None = None
    paths: Mapping[str, str] = field(default_factory=dict)

    def folders(self, services: tuple[str, ...], argocd: "ArgoCdSettings | None") -> dict[str, str]:
        """Service -> ``<path>/<environment>`` (relative to the checkout) for each of ``services``; empty with
        ``pulumi`` delivery. Settings have checked that every one has a path."""
        if self.mode != "argocd":
            return {}
        apps = argocd.applications if argocd is not None else {}
        return {name: f"{self.paths.get(name) or apps[name].path}/{self.environment}" for name in services}


@dataclass(frozen=True)
class AgentsSettings(PhaseNamespaces):
    """Phase 4: its namespaces, the first-party services it deploys (``services``) and how their application
    objects reach the cluster (``delivery``)."""

    services: AgentServices = field(default_factory=AgentServices)
    delivery: AgentDelivery = field(default_factory=AgentDelivery)


@dataclass(frozen=True)
class LoadTestSettings:
    """k6 load tests (docs/load-tests.md): the k6 operator (its official chart) in ``ops.ops`` and one TestRun per
    scenario of components/ops/scenarios.yaml, against the gateway's in-cluster Service.

    ``scenarios``: the scenario names run in this stack (empty: all); ``rateScale``: the factor on every
    scenario's arrival rate here (a small stack takes a share of the declared load); ``operator``: the
    controller's resources; ``runner``: each k6 runner pod's; ``tokenPath``: the Vault KV path where an
    administrator keeps the bearer token of the load-test principal (issued by identity), delivered by External
    Secrets to the runners only; ``productionReason``: load tests do not run in prod unless this says why.
    """

    operator: Resources
    runner: Resources
    scenarios: tuple[str, ...] = ()
    rate_scale: float = field(default=1.0, metadata=rule(minimum=0.01, maximum=10))
    token_path: str = field(default="ops/load-tests/token", metadata=rule(check=_vault_path))
    production_reason: str | None = None


@dataclass(frozen=True)
class ChaosSettings:
    """Chaos Mesh and the platform's resilience experiments (docs/chaos.md), in the staging stack only.

    Chaos Mesh runs in ``ops.namespaces.chaos``, a namespace of its own whose Pod Security is
    ``privileged`` (its daemon enters other pods' namespaces), holding its controller and daemon alone.
    ``controller``/``daemon``: each container's resources; ``controllerReplicas``: the controller
    manager's replicas (leader election; 2 or more where the stack is highly available).
    ``runtime``/``socketPath``: the nodes' container runtime, which the daemon talks to.
    ``deadline``: the longest the whole Workflow may run. Which release it runs against is not a
    setting: the Workflow's name carries the catalog's release id (``tools/ops/release.release_id``),
    so every promotion that changes a digest creates a new Workflow, that is a new run.
    """

    controller: Resources
    daemon: Resources
    controller_replicas: int = count(1, 5)
    runtime: Literal["containerd", "crio"] = "containerd"
    socket_path: str = field(default="/run/containerd/containerd.sock", metadata=rule(pattern=re.compile(r"^/[A-Za-z0-9._/-]+\.sock$"), pattern_hint="an absolute path to the runtime's socket"))
    deadline: str = field(default="2h", metadata=rule(pattern=re.compile(r"^[0-9]+(s|m|h)$"), pattern_hint="a duration such as 90m or 2h"))


@dataclass(frozen=True)
class OpsSettings(PhaseNamespaces):
    """Phase 5: its namespaces and the release machinery that runs in the cluster (docs/runbooks/ops.md).
    A part left unset is not installed. ``loadTests``: k6 load tests (:class:`LoadTestSettings`); ``chaos``:
    Chaos Mesh and the resilience experiments, staging only (:class:`ChaosSettings`)."""

    load_tests: LoadTestSettings | None = None
    chaos: ChaosSettings | None = None


NAMESPACE_KEY = re.compile(r"^(core|mesh|governance|agents|ops)\.[A-Za-z][A-Za-z0-9]*$")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ROUTE_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
SCOPE = re.compile(r"^[A-Za-z0-9:._/-]+$")


@dataclass(frozen=True)
class EdgeBackend:
    """Where a public route's requests go once authorized: a Service (which may not exist yet)."""

    service: str = field(metadata=rule(pattern=DNS_LABEL, pattern_hint="a Service name"))
    namespace: str = field(metadata=rule(pattern=NAMESPACE_KEY, pattern_hint="<phase>.<purpose>, such as agents.agents"))
    """The backend's namespace by ``<phase>.<purpose>`` (like ``mesh.istio.members``), so renaming a
    namespace in the stack file does not orphan its routes."""
    port: int = count(1, 65535)
    pods: Mapping[str, str] = field(default_factory=dict)
    """Labels of the backend's pods, for its NetworkPolicy (default: app.kubernetes.io/name=<service>)."""


@dataclass(frozen=True)
class EdgeRoute:
    """One public API: ``https://<host>.<domain><pathPrefix>``, the methods it serves, who may call it.

    ``tenantHeader``/``tenantPathSegment`` say where the request names its tenant (the OPA policy
    compares it with the token's ``tenantClaim``); a route without either serves no tenant data and
    only checks the scopes.
    """

    name: str = field(metadata=rule(pattern=DNS_LABEL, pattern_hint="a DNS-1123 label"))
    host: str = field(metadata=rule(pattern=DNS_LABEL, pattern_hint="a host label; the stack's domain is appended"))
    path_prefix: str = field(metadata=rule(pattern=ROUTE_PATH, pattern_hint="an absolute path prefix such as /v1/agents"))
    methods: tuple[str, ...]
    scopes: Mapping[str, tuple[str, ...]]
    """Per method, the scopes a token must all carry (every method in ``methods`` needs an entry)."""
    backend: EdgeBackend
    tenant_claim: str = "tenant"
    tenant_header: str | None = None
    tenant_path_segment: int | None = field(default=None, metadata=rule(minimum=1, maximum=16))
    """The tenant is this segment of the path (1 = first after the prefix)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.methods) - set(HTTP_METHODS))
        if unknown or not self.methods:
            raise ValueError(f"route {self.name}: methods must be a non-empty list of {', '.join(HTTP_METHODS)}; got {unknown or '[]'}")
        if set(self.scopes) != set(self.methods):
            raise ValueError(f"route {self.name}: scopes must name exactly the route's methods {sorted(self.methods)}; "
                             f"got {sorted(self.scopes)}")
        for method, scopes in self.scopes.items():
            bad = [s for s in scopes if not SCOPE.match(s)]
            if not scopes or bad:
                raise ValueError(f"route {self.name}: scopes.{method} must list at least one scope of letters, digits and :._/-")
        if self.tenant_header and self.tenant_path_segment:
            raise ValueError(f"route {self.name}: name the tenant by tenantHeader or tenantPathSegment, not both")


@dataclass(frozen=True)
class EdgeJwt:
    """The identity service's tokens: who issues them, for whom, where its signing keys are.

    The Envoy proxies fetch the signing keys (JWKS) either from the identity service inside the cluster,
    ``jwksService`` (a Service by ``<phase>.<purpose>`` namespace, port and path, reached over the mesh:
    one declared flow, no address outside the cluster), or from ``jwksUrl``, an https URL outside it (a
    federated provider) whose host must be a destination declared in ``mesh.istio.egress`` for
    ``mesh.gateway``. Exactly one of the two.
    """

    issuer: str = field(metadata=rule(pattern=re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"),
                                      pattern_hint="an https issuer URL"))
    audiences: tuple[str, ...]
    jwks_url: str | None = field(default=None, metadata=rule(
        pattern=re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/-]*$"),
        pattern_hint="the https URL of an identity provider's JWKS outside the cluster"))
    jwks_service: EdgeBackend | None = None
    jwks_path: str = field(default="/.well-known/jwks.json", metadata=rule(pattern=ROUTE_PATH, pattern_hint="an absolute path"))

    def jwks_uri(self) -> str:
        """Where Envoy fetches the keys: the in-cluster Service's URL (its namespace resolved), or ``jwksUrl``."""
        if self.jwks_service is not None:
            b = self.jwks_service
            return f"http://{b.service}.{b.namespace}.svc.cluster.local:{b.port}{self.jwks_path}"
        return self.jwks_url or ""


@dataclass(frozen=True)
class EdgeSettings:
    """The public edge (``somaagenthub:mesh.edge``): Envoy Gateway, its HTTPS listener, the public routes,
    and the OPA ext-authz service every route goes through."""

    controller: Server
    """Envoy Gateway controller: replicas and resources (storage unused: it keeps no state)."""
    proxy_replicas: int = count(1, 20)
    proxy_resources: Resources
    opa_replicas: int = count(1, 20)
    opa_resources: Resources
    jwt: EdgeJwt
    routes: tuple[EdgeRoute, ...]
    tls_issuer: str | None = field(default=None, metadata=rule(pattern=DNS_SUBDOMAIN, pattern_hint="a ClusterIssuer name"))
    """The ClusterIssuer of the public certificate (an ACME issuer for a public name); default: Core's platform CA."""
    http_redirect: bool = True
    """Also listen on HTTP, answering every request with a redirect to HTTPS (nothing else)."""


@dataclass(frozen=True)
class AdmissionSettings:
    """Gatekeeper in the mesh's ``admission`` namespace (issue 11, point 4).

    ``gatekeeper``: the controller-manager (the admission webhook) replicas and each container's size;
    ``audit``: the audit pod's size (one pod, it re-checks what already runs). ``enforcementAction``
    is every platform constraint's: ``deny`` refuses, ``dryrun`` and ``warn`` only report (audit, and
    a warning to the client for ``warn``). ``failurePolicy`` is the webhook's when Gatekeeper cannot
    answer: ``Fail`` refuses the request, ``Ignore`` lets it through unchecked and needs
    ``failurePolicyReason``.
    """

    gatekeeper: Stateless
    audit: Resources
    enforcement_action: Literal["deny", "dryrun", "warn"]
    failure_policy: Literal["Fail", "Ignore"]
    failure_policy_reason: str | None = None


# ---- Mesh: Istio (issue 11 point 1) ----------------------------------------------------------------

RETRY_ON = ("5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx", "refused-stream",
            "retriable-status-codes", "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")
"""Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on conditions, the values Istio's HTTPRetry.retryOn takes."""


@dataclass(frozen=True)
class RetrySettings:
    """Istio HTTPRetry: ``attempts`` retries, each bounded by ``perTryTimeout``, on ``retryOn`` conditions."""

    attempts: int = count(0, 10)
    per_try_timeout: str = duration()
    retry_on: tuple[str, ...] = field(default=("connect-failure", "refused-stream", "unavailable", "reset"))


@dataclass(frozen=True)
class ConnectionPoolSettings:
    """Istio ConnectionPoolSettings (circuit breaking by limits): TCP connections and HTTP requests in flight."""

    max_connections: int = count(1, 100000)
    http1_max_pending_requests: int = count(1, 100000)
    http2_max_requests: int = count(1, 100000)
    max_requests_per_connection: int = count(0, 100000)


@dataclass(frozen=True)
class OutlierDetectionSettings:
    """Istio OutlierDetection (circuit breaking by ejection): hosts failing ``consecutive5xxErrors`` times
    in a row are ejected for ``baseEjectionTime``, at most ``maxEjectionPercent`` of them."""

    consecutive_5xx_errors: int = count(1, 1000)
    interval: str = duration()
    base_ejection_time: str = duration()
    max_ejection_percent: int = count(1, 100)


@dataclass(frozen=True)
class TrafficPolicySettings:
    """The L7 traffic policy a waypoint applies to one Service: request timeout, retries, circuit breaking."""

    request_timeout: str = duration()
    retries: RetrySettings
    connection_pool: ConnectionPoolSettings
    outlier_detection: OutlierDetectionSettings


@dataclass(frozen=True)
class TrafficOverride:
    """Per-Service changes over the defaults (``<namespace>/<service>``): any field left out keeps the default."""

    request_timeout: str | None = field(default=None, metadata=rule(pattern=DURATION_TEXT, pattern_hint="a duration such as 30s"))
    retries: RetrySettings | None = None
    connection_pool: ConnectionPoolSettings | None = None
    outlier_detection: OutlierDetectionSettings | None = None


PEM_PUBLIC_KEY = re.compile(r"^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$")
KMS_REFERENCE = re.compile(r"^(awskms|gcpkms|azurekms|hashivault)://\S+$")
"""The KMS URI schemes cosign and policy-controller accept for a ``key.kms`` authority."""


@dataclass(frozen=True)
class PlatformSigningKey:
    """The public half of the key the release pipeline signs mirrored images with (issue 14): exactly
    one of a PEM public key (``publicKeyPem``) or a KMS reference (``kms``). A public key, not a secret."""

    public_key_pem: str = ""
    kms: str = ""


@dataclass(frozen=True)
class EgressDestination:
    """One external destination the mesh may reach: its ServiceEntry and its egress NetworkPolicy come from here.

    ``namespaces`` are phase namespace keys (``core.observability``, ``mesh.gateway``...) whose pods
    (or the pods ``pods`` selects there) may use it; ``cidrs`` are its addresses (NetworkPolicies name
    addresses, not hosts). ``podsIn`` (label -> values) narrows to pods whose label has one of the values,
    for a destination several kinds of pod use (Argo CD's controller and API server reach other clusters).
    """

    hosts: tuple[str, ...]
    ports: tuple[int, ...]
    protocol: Literal["TLS", "HTTPS", "TCP"]
    cidrs: tuple[str, ...]
    namespaces: tuple[str, ...]
    pods: Mapping[str, str] = field(default_factory=dict)
    pods_in: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    reason: str = ""

    def selects(self, labels: Mapping[str, str]) -> bool:
        """Whether pods carrying ``labels`` are among the pods that may use this destination."""
        return (all(labels.get(k) == v for k, v in self.pods.items())
                and all(labels.get(k) in values for k, values in self.pods_in.items()))


@dataclass(frozen=True)
class IstioSettings:
    """Istio in ambient mode: istiod's size, the namespaces in the mesh, traffic defaults and declared egress.

    ``members``: phase namespace keys (``mesh.gateway``, ``agents.runtime``...) labelled
    ``istio.io/dataplane-mode: ambient``; ``waypoints``: the members whose Services get a waypoint
    (L7 policy); ``traffic``: the defaults every waypoint-served Service gets, ``overrides`` by
    ``<namespace>/<service>``; ``egress``: every destination outside the cluster, by name.
    The trust domain is the identity part's (``mesh.identity.trustDomain``).
    """

    replicas: int = count(1, 7)
    resources: Resources
    ztunnel_resources: Resources
    cni_resources: Resources
    traffic: TrafficPolicySettings
    members: tuple[str, ...] = ()
    waypoints: tuple[str, ...] = ()
    overrides: Mapping[str, TrafficOverride] = field(default_factory=dict)
    egress: Mapping[str, EgressDestination] = field(default_factory=dict)


DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def duration_seconds(value: str) -> int:
    """``90m`` -> 5400: the settings' durations (``duration()``) in whole seconds, as Vault takes TTLs."""
    match = re.fullmatch(r"([0-9]+)(s|m|h|d|w|y)", value)
    if not match:
        raise ValueError(f"{value!r} is not a duration in s, m, h, d, w or y")
    return int(match[1]) * DURATION_SECONDS[match[2]]


def _whole_duration(value: str) -> str | None:
    return None if re.fullmatch(r"[0-9]+(s|m|h|d|w|y)", value) else "must be a duration in whole s, m, h, d, w or y, such as 1h or 365d"


@dataclass(frozen=True)
class MeshIdentitySettings:
    """Workload identity: Vault's mesh root CA signs the intermediate istiod signs workload certificates
    with (Istio's plug-in CA, the ``cacerts`` Secret), issued and renewed by cert-manager
    (docs/architecture/mesh-identity.md).

    ``trust_domain``: the ``spiffe://<trust domain>`` of every identity; the stack's ``domain`` or a
    name under it (never Istio's default ``cluster.local``). TTLs: the leaf (workload) certificate
    istiod signs, the intermediate (``cacerts``) and the root. ``intermediate_renew_before``: how long
    before its expiry cert-manager renews the intermediate; longer than Core's certificate warning
    horizon, so that Core's CertificateExpiringSoon means "renewal is failing".
    """

    trust_domain: str = field(metadata=rule(pattern=DNS_SUBDOMAIN, pattern_hint="a DNS name such as mesh.soma.example.com"))
    leaf_ttl: str = field(metadata=rule(check=_whole_duration))
    intermediate_ttl: str = field(metadata=rule(check=_whole_duration))
    intermediate_renew_before: str = field(metadata=rule(check=_whole_duration))
    root_ttl: str = field(metadata=rule(check=_whole_duration))


@dataclass(frozen=True)
class VerifierEgress:
    """An address range outside the cluster the signature verifier may reach (HTTPS): a registry
    it reads signatures from, or the Sigstore TUF repository it reads Fulcio and Rekor roots from."""

    name: str = field(metadata=rule(pattern=DNS_LABEL, pattern_hint="a DNS label naming the destination"))
    cidr: str = field(metadata=rule(check=_cidr))
    why: str = ""
    port: int = field(default=443, metadata=rule(minimum=1, maximum=65535))


@dataclass(frozen=True)
class SignatureSettings:
    """Admission-time image signature verification (sigstore policy-controller, issue 11 point 4).

    ``verifyBy``: ``signer`` checks each image against the identity its catalog entry names (the upstream
    keyless identity, or the platform key); ``platformKey`` checks every image against the platform key,
    which the mirror applies only after verifying the upstream identity (issue 14): the stack then pulls
    only from the platform registry and needs no egress to public Sigstore services.
    ``mode``: ``enforce`` refuses a pod whose image does not verify, ``warn`` admits it with a warning
    (ClusterImagePolicy ``spec.mode``); ``noMatchPolicy`` decides for an image no policy names.
    ``exemptNamespaces``: platform namespaces left unlabelled, by ``<phase>.<purpose>`` (so a renamed namespace
    stays exempt), each with its reason.
    """

    verify_by: Literal["signer", "platformKey"]
    mode: Literal["enforce", "warn"]
    no_match_policy: Literal["deny", "warn"]
    failure_policy: Literal["Fail", "Ignore"]
    replicas: int = count(1, 9)
    resources: Resources = field(default_factory=lambda: Resources("100m", "128Mi", "200m", "512Mi"))
    platform_key: PlatformSigningKey = field(default_factory=PlatformSigningKey)
    egress: tuple[VerifierEgress, ...] = ()
    exempt_namespaces: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MeshSettings:
    """Phase 2: the mesh (Istio), workload identity, the edge (Envoy Gateway + OPA) and admission.

    ``namespaces``: ``istio`` (istiod and its certificate agent), ``nodeAgents`` (the mesh's node
    agents alone: the one Pod Security exception of the phase), ``gateway`` (Envoy Gateway and its
    proxies), ``policy`` (OPA, the edge's authorization service), ``admission`` (Gatekeeper and the
    image signature verifier).
    """

    namespaces: Mapping[str, NamespaceSettings]
    identity: MeshIdentitySettings
    admission: AdmissionSettings
    edge: EdgeSettings | None = None
    istio: IstioSettings | None = None
    signatures: SignatureSettings | None = None
    """Image signature verification at admission; none: no verifier is installed."""


# ---- Governance: Argo CD (issue 12 point 2) -------------------------------------------------------

GPG_FINGERPRINT = re.compile(r"^[0-9A-F]{40}$")
PGP_PUBLIC_KEY_BLOCK = re.compile(r"^-----BEGIN PGP PUBLIC KEY BLOCK-----\n.+\n-----END PGP PUBLIC KEY BLOCK-----\n?$", re.S)
HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")
VAULT_PATH = re.compile(r"^[a-z0-9][a-z0-9._/-]*[a-z0-9]$")
ENVIRONMENTS = ("dev", "staging", "prod")
"""The promotion order: a release reaches staging only after dev is healthy, prod only after staging."""
IN_CLUSTER = "https://kubernetes.default.svc"
"""How Argo CD names the cluster it runs in (its in-cluster destination)."""


@dataclass(frozen=True)
class ArgoCdSigningKey:
    """A GnuPG public key whose signatures Argo CD accepts on the applications' commits (a public key, not a
    secret). ``fingerprint``: the key's 40-hex-digit v4 fingerprint, upper case, as ``gpg --fingerprint``
    prints it without spaces; ``publicKey``: ``gpg --export --armor <fingerprint>``. The key ID Argo CD's
    AppProjects list (``signatureKeys``) is the fingerprint's last 16 hex digits."""

    fingerprint: str = field(metadata=rule(pattern=GPG_FINGERPRINT, pattern_hint="40 upper-case hex digits (a v4 OpenPGP fingerprint, no spaces)"))
    public_key: str = field(metadata=rule(pattern=PGP_PUBLIC_KEY_BLOCK, pattern_hint="an ASCII-armored PGP PUBLIC KEY BLOCK"))
    owner: str = ""

    @property
    def key_id(self) -> str:
        return self.fingerprint[-16:]


@dataclass(frozen=True)
class ArgoCdSso:
    """Argo CD's own OIDC login (no Dex): the identity provider's issuer, the client Argo CD is registered as,
    the scopes it asks for, and which of the provider's groups get which Argo CD role.

    The client secret never appears here: an administrator keeps it in Vault at ``<namespace>/<clientSecretPath>``
    (key ``client-secret``) and External Secrets delivers it (docs/architecture/gitops.md)."""

    issuer: str = field(metadata=rule(pattern=HTTPS_URL, pattern_hint="an https issuer URL"))
    client_id: str = field(metadata=rule(pattern=re.compile(r"^[A-Za-z0-9._:@-]+$"), pattern_hint="an OIDC client ID"))
    client_secret_path: str = field(metadata=rule(pattern=VAULT_PATH, pattern_hint="a Vault KV path inside the namespace's own folder, such as argocd/oidc"))
    """Relative to the gitops namespace's own Vault folder (``<namespace>/``), the one its store may read."""
    groups: Mapping[str, Literal["admin", "readonly"]]
    """IdP group -> Argo CD built-in role (role:admin, role:readonly)."""
    requested_scopes: tuple[str, ...] = ("openid", "profile", "email", "groups")
    default_role: Literal["", "readonly"] = ""
    """The role of a logged-in user in no mapped group: none (sees nothing) or readonly."""


@dataclass(frozen=True)
class ArgoCdEnvironment:
    """One promotion wave: where the applications of environment ``name`` are deployed.

    ``server``: the cluster's API (``https://kubernetes.default.svc`` is the cluster Argo CD runs in);
    ``namespace``: the agents namespace there (in this cluster it defaults to this stack's agents namespace,
    so a stack that renames its namespaces needs no change here). A cluster other than this one needs
    ``credentialsPath``, where an administrator keeps its Argo CD cluster secret (keys ``name``, ``server``, ``namespaces``,
    ``config``), relative to the gitops namespace's own Vault folder; its API's host and port are a
    destination declared in ``mesh.istio.egress`` (with its address range)."""

    name: Literal["dev", "staging", "prod"]
    namespace: str | None = field(default=None, metadata=rule(pattern=DNS_LABEL, pattern_hint="a namespace name"))
    server: str = field(default=IN_CLUSTER, metadata=rule(pattern=HTTPS_URL, pattern_hint="a cluster API URL"))
    credentials_path: str | None = field(default=None, metadata=rule(pattern=VAULT_PATH, pattern_hint="a Vault KV path inside the namespace's own folder"))


@dataclass(frozen=True)
class ArgoCdApplication:
    """A first-party application Argo CD deploys: its folder in the applications repository (one
    sub-folder per environment, ``<path>/<env>``) and the applications it needs running first."""

    path: str = field(metadata=rule(pattern=re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"), pattern_hint="a relative folder path"))
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class ArgoCdSettings:
    """Argo CD in ``governance.gitops`` (issue 12 point 2; docs/architecture/gitops.md).

    Sizes per component (``controller``, ``repoServer``, ``server``, ``applicationSet``; ``redis``: each Redis,
    Sentinel and HAProxy container). ``adminEnabled``: Argo CD's local ``admin`` user (never in a mandatory
    stack: people log in through ``sso``). ``host``: the UI's name under the stack's domain. ``repository``:
    the one Git repository (https) the applications come from, at ``targetRevision``. Argo CD's ways out of
    the cluster (the Git host, the OIDC issuer, the other clusters' APIs) are destinations declared once in
    ``mesh.istio.egress`` for ``governance.gitops`` (hosts, ports, address ranges, the pods that use them):
    the mesh makes their ServiceEntries and NetworkPolicies, and settings refuse a host none covers. ``signingKeys``: whose signed commits are
    accepted. ``environments``: the promotion waves, in order. ``applications``: what is deployed, with
    their dependencies (the sync order inside an environment)."""

    controller: Stateless
    repo_server: Stateless
    server: Stateless
    application_set: Stateless
    redis: Resources
    admin_enabled: bool
    host: str = field(metadata=rule(pattern=DNS_LABEL, pattern_hint="a host label; the stack's domain is appended"))
    repository: str = field(metadata=rule(pattern=re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[A-Za-z0-9._~/-]+$"),
                                          pattern_hint="the https URL of a Git repository"))
    signing_keys: tuple[ArgoCdSigningKey, ...]
    environments: tuple[ArgoCdEnvironment, ...]
    applications: Mapping[str, ArgoCdApplication]
    target_revision: str = field(default="main", metadata=rule(pattern=re.compile(r"^[A-Za-z0-9._/-]+$"), pattern_hint="a branch or tag"))
    sso: ArgoCdSso | None = None

    def placed(self, agents_namespace: str) -> "ArgoCdSettings":
        """These settings with every in-cluster wave that names no namespace deploying into ``agents_namespace``."""
        return replace(self, environments=tuple(
            replace(e, namespace=agents_namespace) if e.server == IN_CLUSTER and e.namespace is None else e for e in self.environments))


@dataclass(frozen=True)
class KubecostSettings:
    """Kubecost (cost allocation) in ``governance.cost``, reading Core's Prometheus, and the CronJob that
    copies its allocations into ClickHouse ``cost.allocations`` (docs/architecture/cost.md).

    ``model``/``frontend``: the cost-model and frontend containers; ``aggregator``: each of the two
    containers the chart runs from the cost-model image beside them (aggregator, cloud-cost); ``storage``: the cost-model's
    volume (its ETL cache; Prometheus holds the metrics); ``ingestSchedule``: when the ingest CronJob
    copies the last complete hour of allocations (five-field cron, UTC).
    """

    model: Resources
    frontend: Resources
    aggregator: Resources
    storage: str = memory()
    ingest_schedule: str = field(default="7 * * * *", metadata=rule(check=_kubernetes_cron))


@dataclass(frozen=True)
class OpenFgaSettings:
    """OpenFGA, the platform's relationship-based authorization (docs/architecture/openfga.md).

    ``replicas``: OpenFGA servers (stateless; the state is the ``openfga`` database on the platform's
    PostgreSQL), one per node; ``resources``: each server's; ``migrationResources``: the schema
    migration Job's (``openfga migrate``, run before the servers); ``bootstrapResources``: the Job that
    writes the authorization model to the store ``store`` and hands its IDs to Vault. ``traceSampleRatio``:
    the share of requests traced to the platform collector, ``0`` for none.
    """

    replicas: int = count(1, 9)
    resources: Resources
    migration_resources: Resources
    bootstrap_resources: Resources
    store: str = field(default="somaagenthub", metadata=rule(pattern=DNS_LABEL, pattern_hint="a store name such as somaagenthub"))
    trace_sample_ratio: float = field(default=0.1, metadata=rule(minimum=0, maximum=1))


def _plugin_url(value: str) -> str | None:
    if not re.match(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/[^\s'\"\\]*$", value):
        return "must be an https URL where the pinned plugin zip is served (the platform mirror or grafana.com)"
    return None


@dataclass(frozen=True)
class PluginSource:
    """Where Grafana's init container fetches the pinned ClickHouse data source plugin zip (its sha256 is
    pinned in code, components/core/observability/grafana_plugin.py, and checked before unpacking).

    ``url``: the zip itself: grafana.com's download URL of the pinned version (dev) or the platform mirror's
    copy of the same bytes (prod). ``cidr``: where that host is (NetworkPolicies name addresses, not
    hosts); Grafana's pods may reach it on ``port`` and nowhere else outside the cluster.
    """

    url: str = field(metadata=rule(check=_plugin_url))
    cidr: str = field(metadata=rule(check=_cidr))
    why: str = ""
    port: int = field(default=443, metadata=rule(minimum=1, maximum=65535))
    arch: Literal["amd64", "arm64"] = "amd64"


@dataclass(frozen=True)
class AuditShipperSettings:
    """The audit shipper (apps/audit-shipper; docs/architecture/compliance.md, "The shipper"): OPA-Envoy's decision
    logs and Gatekeeper's and Argo CD's Events to the audit topic, in the governance namespace.

    Off unless ``enabled``; enabling needs its image pinned in platform.lock.yaml ``apps`` (the release pipeline).
    One replica: two would both watch the Events and deliver each twice. ``apiAudience``: the audience the
    cluster's API server accepts in ServiceAccount tokens (its ``--api-audiences``, by default its issuer; kubeadm:
    ``https://kubernetes.default.svc.cluster.local``): the shipper's projected token is minted for it alone.
    """

    resources: Resources
    enabled: bool = False
    api_audience: str = field(default="https://kubernetes.default.svc.cluster.local",
                              metadata=rule(pattern=r"^\S+$", pattern_hint="one audience, e.g. https://kubernetes.default.svc.cluster.local"))


@dataclass(frozen=True)
class ComplianceSettings:
    """Compliance on the audit pipeline (issue 12 point 3; docs/architecture/compliance.md): Grafana's
    ClickHouse data source (the plugin from ``pluginSource``), the compliance dashboards and the
    Grafana-managed compliance alerts.

    ``denialSpike``: denials per ``spikeWindowMinutes`` above which ComplianceDenialSpike fires (and at
    least ``spikeFactor`` times the hourly average of the previous day, so a busy but steady stack stays
    quiet); ``imageAttempts``: unpinned or unsigned image attempts per window that fire ComplianceImageAttempts.
    """

    plugin_source: PluginSource
    denial_spike: int = field(default=50, metadata=rule(minimum=1, maximum=1000000))
    spike_factor: int = field(default=3, metadata=rule(minimum=1, maximum=100))
    spike_window_minutes: int = field(default=15, metadata=rule(minimum=5, maximum=1440))
    image_attempts: int = field(default=1, metadata=rule(minimum=1, maximum=100000))
    shipper: AuditShipperSettings | None = None
    """The audit shipper; none or not enabled: the decision points' records reach the audit topic only by backfill."""


@dataclass(frozen=True)
class GovernanceSettings:
    """Phase 3: who may do what (OpenFGA), how changes reach clusters (Argo CD), what happened
    (compliance over the audit pipeline) and what it costs (Kubecost).

    ``namespaces``: ``governance`` (OpenFGA, whose API only the gateway and the orchestrator reach),
    ``gitops`` (Argo CD), ``cost`` (Kubecost). A part left unset is not installed.
    """

    namespaces: Mapping[str, NamespaceSettings]
    kubecost: KubecostSettings | None = None
    openfga: OpenFgaSettings | None = None
    """OpenFGA in the ``governance`` namespace; none: not installed."""
    argocd: ArgoCdSettings | None = None
    compliance: ComplianceSettings | None = None
    """Compliance dashboards and alerts over the audit pipeline; none: Grafana has no ClickHouse data source."""


@dataclass(frozen=True)
class PlatformSettings:
    """Everything a stack decides. Built once by :func:`load`, then only read."""

    kubernetes_version: str = field(metadata=rule(choices=SUPPORTED_KUBERNETES))
    domain: str = field(metadata=rule(pattern=DNS_SUBDOMAIN, pattern_hint="a DNS name such as dev.soma.example"))
    registry: str = field(metadata=rule(check=_registry))
    policy_enforcement: Literal["advisory", "mandatory"]
    high_availability: bool
    deletion_protection: bool
    """Protect every stateful resource and every chart that installs CRDs (Pulumi ``protect``): a
    rename, a parent move or a destroy on the wrong stack then stops instead of deleting data."""
    storage_class: str = field(metadata=rule(pattern=DNS_SUBDOMAIN, pattern_hint="a StorageClass name"))
    container_defaults: ContainerDefaults
    phases: Phases
    core: CoreSettings
    mesh: MeshSettings
    governance: GovernanceSettings
    agents: AgentsSettings
    ops: OpsSettings
    stack: str = "dev"

    def all_namespaces(self) -> tuple[str, ...]:
        core = self.core.namespaces
        names = [core.operators.name, core.secrets.name, core.data.name, core.observability.name]
        if core.node_logs is not None:
            names.append(core.node_logs.name)
        for phase in ("mesh", "governance", "agents", "ops"):
            names.extend(ns.name for ns in getattr(self, phase).namespaces.values())
        return tuple(names)

    def namespace_named_by(self, purpose_path: str) -> str | None:
        """The name of the namespace ``<phase>.<purpose>`` names (``mesh.admission``, ``core.data``), or None."""
        phase, _, purpose = purpose_path.partition(".")
        if phase == "core":
            ns = getattr(self.core.namespaces, {"nodeLogs": "node_logs"}.get(purpose, purpose), None)
            return ns.name if isinstance(ns, NamespaceSettings) else None
        if phase in ("mesh", "governance", "agents", "ops"):
            ns = getattr(self, phase).namespaces.get(purpose)
            return ns.name if ns is not None else None
        return None

    def workload_namespaces(self) -> tuple[str, ...]:
        """Where platform and app workloads run: every namespace the platform creates except the
        node log agent's, which holds the agent alone (it ships straight to Loki, not through the
        collector)."""
        node_logs = self.core.namespaces.node_logs
        return tuple(n for n in self.all_namespaces() if node_logs is None or n != node_logs.name)


def _openfga_problems(s: PlatformSettings) -> list[str]:
    """An HA stack runs at least two OpenFGA servers (the gateway and the orchestrator ask it on every
    request). Until core.vault.configure is true there is no database access yet, and the phase leaves
    OpenFGA out (as Core leaves out its data stores)."""
    openfga = s.governance.openfga
    if openfga is None:
        return []
    key = f"{PROJECT}:governance.openfga"
    problems = []
    if s.high_availability and openfga.replicas < 2:
        problems.append(f"{key}.replicas: highAvailability is on, so at least 2 OpenFGA servers are needed "
                        f"(every authorization check of the gateway and the orchestrator waits on one); got {openfga.replicas}")
    if "governance" not in s.governance.namespaces:
        problems.append(f"{key}: OpenFGA runs in governance.namespaces.governance, which is missing")
    return problems


def _phase_problems(phases: Phases) -> list[str]:
    problems = []
    for phase in phases.enabled():
        for needed in PHASE_NEEDS[phase]:
            if not getattr(phases, needed):
                problems.append(f"{PROJECT}:phases.{phase}: needs phase '{needed}', which is disabled")
    return problems


def _namespace_problems(s: PlatformSettings) -> list[str]:
    seen: dict[str, int] = {}
    for name in s.all_namespaces():
        seen[name] = seen.get(name, 0) + 1
    return [f"{PROJECT}: namespace '{n}' is declared {c} times" for n, c in seen.items() if c > 1]


def _node_log_problems(s: PlatformSettings) -> list[str]:
    """The agent and its namespace come together: the namespace allows a hostPath, so it exists only for the agent."""
    agent, namespace = s.core.observability.node_logs, s.core.namespaces.node_logs
    if agent is not None and namespace is None:
        return [f"{PROJECT}:core.namespaces.nodeLogs: required when core.observability.nodeLogs is set "
                "(the node log agent runs in its own namespace, the only one that may mount a hostPath)"]
    if agent is None and namespace is not None:
        return [f"{PROJECT}:core.namespaces.nodeLogs: core.observability.nodeLogs is not set, so no node log agent "
                "runs and this namespace (Pod Security privileged) would hold nothing; remove it or configure the agent"]
    return []


MIN_LEAF_TTL_SECONDS = 600
MAX_LEAF_TTL_SECONDS = 86400
CERTIFICATE_WARNING_SECONDS = 14 * 86400
"""Core's CertificateExpiringSoon fires below 14 days left (components/core/observability/alerts/certificates.yaml)."""


def _identity_problems(s: PlatformSettings) -> list[str]:
    """The trust domain belongs to the stack, and the TTLs nest: leaf < intermediate < root, with the
    intermediate renewed early enough for Core's certificate alerts to mean what they say."""
    identity, key = s.mesh.identity, f"{PROJECT}:mesh.identity"
    problems = []
    domain = identity.trust_domain
    if domain == "cluster.local" or domain.endswith(".cluster.local"):
        problems.append(f"{key}.trustDomain: 'cluster.local' is Istio's default, shared by every mesh; "
                        f"use the stack's domain {s.domain} or a name under it")
    elif domain != s.domain and not domain.endswith("." + s.domain):
        problems.append(f"{key}.trustDomain: {domain!r} must be the stack's domain {s.domain!r} or a name under it")
    names = ("leaf_ttl", "intermediate_ttl", "intermediate_renew_before", "root_ttl")
    ttl = {name: duration_seconds(getattr(identity, name)) for name in names}
    if not MIN_LEAF_TTL_SECONDS <= ttl["leaf_ttl"] <= MAX_LEAF_TTL_SECONDS:
        problems.append(f"{key}.leafTtl: workload certificates live between 10m and 24h (short-lived is what "
                        f"makes revocation unnecessary); got {identity.leaf_ttl}")
    if ttl["intermediate_ttl"] < 10 * ttl["leaf_ttl"]:
        problems.append(f"{key}.intermediateTtl: must be at least ten leaf lifetimes ({identity.leaf_ttl} x 10), so that "
                        f"istiod never has to cut a leaf short at the intermediate's expiry; got {identity.intermediate_ttl}")
    if not CERTIFICATE_WARNING_SECONDS < ttl["intermediate_renew_before"] < ttl["intermediate_ttl"]:
        problems.append(f"{key}.intermediateRenewBefore: must be shorter than intermediateTtl ({identity.intermediate_ttl}) and "
                        f"longer than {CERTIFICATE_WARNING_SECONDS // 86400}d, Core's CertificateExpiringSoon horizon, so that alert "
                        f"fires only when renewal fails; got {identity.intermediate_renew_before}")
    if ttl["root_ttl"] < 2 * ttl["intermediate_ttl"]:
        problems.append(f"{key}.rootTtl: must be at least twice the intermediate's ({identity.intermediate_ttl}), so an "
                        f"intermediate can be renewed under the same root; got {identity.root_ttl}")
    return problems


def _vault_problems(s: PlatformSettings) -> list[str]:
    """Dev mode keeps everything in one process's memory: never HA, never more than one."""
    vault = s.core.vault
    problems = []
    if vault.mode == "dev" and vault.replicas != 1:
        problems.append(f"{PROJECT}:core.vault.replicas: mode 'dev' runs exactly one in-memory server; got {vault.replicas}")
    if vault.mode == "dev" and s.high_availability:
        problems.append(f"{PROJECT}:core.vault.mode: highAvailability is on, so Vault must run mode 'raft'")
    if vault.mode == "dev" and vault.seal.type != "shamir":
        problems.append(f"{PROJECT}:core.vault.seal.type: mode 'dev' unseals itself in memory; a '{vault.seal.type}' seal applies to raft only")
    if vault.mode == "raft" and not vault.snapshot_schedule:
        problems.append(f"{PROJECT}:core.vault.snapshotSchedule: mode 'raft' keeps Vault's data in Raft, whose snapshots "
                        "are its backup; name when they run (five-field cron, UTC), such as 17 * * * *")
    if s.high_availability and vault.seal.type == "shamir" and not (vault.seal.shamir_reason or "").strip():
        problems.append(f"{PROJECT}:core.vault.seal: highAvailability is on, so Vault must unseal without people "
                        "(type transit, awskms, gcpckms or azurekeyvault), or seal.shamirReason must say why people unseal it")
    return problems


REQUIRED_PURPOSES = {"governance": ("governance",), "agents": ("agents",)}
"""Namespaces Core must know by purpose: its stores admit clients from them."""


def _purpose_problems(s: PlatformSettings) -> list[str]:
    return [
        f"{PROJECT}:{phase}.namespaces.{purpose}: required value is missing (Core's stores admit clients from it)"
        for phase, purposes in REQUIRED_PURPOSES.items()
        for purpose in purposes
        if purpose not in getattr(s, phase).namespaces
    ]


def _protection_problems(s: PlatformSettings) -> list[str]:
    """A stack whose policies are mandatory (prod) holds data worth keeping: it must protect it."""
    if s.policy_enforcement == "mandatory" and not s.deletion_protection:
        return [f"{PROJECT}:deletionProtection: policyEnforcement is mandatory, so stateful resources must be "
                "protected from deletion (set true; tearing down on purpose is in docs/runbooks/core-data.md)"]
    return []


def _backup_problems(s: PlatformSettings) -> list[str]:
    """Backups that stay in the cluster are lost with it: a mandatory stack sends them elsewhere."""
    backups = s.core.backups
    if s.policy_enforcement == "mandatory" and backups.offsite is None and not (backups.in_cluster_reason or "").strip():
        return [f"{PROJECT}:core.backups.offsite: policyEnforcement is mandatory, so backups must leave the cluster "
                "(name an S3-compatible target outside it), or core.backups.inClusterReason must say why they stay"]
    return []


def _ha_problems(s: PlatformSettings) -> list[str]:
    """A stack that says it is highly available must not run any quorum of one."""
    if not s.high_availability:
        return []
    c = s.core
    sized = {
        "core.vault.replicas": c.vault.replicas,
        "core.postgres.instances": c.postgres.instances,
        "core.kafka.controllers": c.kafka.controllers,
        "core.kafka.brokers": c.kafka.brokers,
        "core.clickhouse.replicas": c.clickhouse.replicas,
        "core.externalSecrets.replicas": c.external_secrets.replicas,
        "core.certManager.replicas": c.cert_manager.replicas,
        "core.observability.prometheus.replicas": c.observability.prometheus.replicas,
    }
    return [
        f"{PROJECT}:{key}: highAvailability is on, so at least 2 are needed (3 for quorum stores); got {n}"
        for key, n in sized.items()
        if n < 2
    ]


def _tempo_problems(s: PlatformSettings) -> list[str]:
    """What runs must be what the settings say: one single-binary Tempo, and why, when the stack is HA."""
    tempo = s.core.observability.tempo
    key = f"{PROJECT}:core.observability.tempo"
    problems = []
    if tempo.mode == "scalable":
        problems.append(f"{key}.mode: 'scalable' needs the tempo-distributed chart, which is not vendored; "
                        "Tempo runs as one single binary (set mode single-binary; docs/runbooks/observability.md, 'Tempo in prod')")
    if tempo.replicas != 1:
        problems.append(f"{key}.replicas: single-binary Tempo replicas do not coordinate (each compacts the shared "
                        f"bucket and keeps its own recent traces), so exactly 1 runs; got {tempo.replicas}")
    if s.high_availability and not (tempo.single_replica_reason or "").strip():
        problems.append(f"{key}.singleReplicaReason: highAvailability is on, and Tempo runs one replica; "
                        "say why that is acceptable for this stack")
    return problems


def _alerting_problems(s: PlatformSettings) -> list[str]:
    """Routes name declared receivers, every receiver is routed somewhere, and a mandatory stack pages
    someone and sends a heartbeat unless it says why not."""
    am = s.core.observability.alertmanager
    key = f"{PROJECT}:core.observability.alertmanager"
    problems = [f"{key}.receivers.{name}: a receiver name is a DNS label (it names a Vault key and a NetworkPolicy)"
                for name in am.receivers if not DNS_LABEL.match(name) or name == "null"]
    declared = ", ".join(sorted(am.receivers)) or "none"
    routed: set[str] = set()
    for route, names in (("critical", am.critical), ("warning", am.warning), ("heartbeat", (am.heartbeat,) if am.heartbeat else ())):
        for name in names:
            routed.add(name)
            if name not in am.receivers:
                problems.append(f"{key}.{route}: '{name}' is not a receiver (declared: {declared})")
        if len(set(names)) != len(names):
            problems.append(f"{key}.{route}: a receiver is listed twice")
    problems += [f"{key}.receivers.{name}: declared but routed nowhere (name it in critical, warning or heartbeat)"
                 for name in sorted(set(am.receivers) - routed)]
    if s.policy_enforcement == "mandatory" and not (am.no_receiver_reason or "").strip():
        if not am.critical:
            problems.append(f"{key}.critical: policyEnforcement is mandatory, so critical alerts must page a receiver, "
                            "or alertmanager.noReceiverReason must say why none does")
        if not am.heartbeat:
            problems.append(f"{key}.heartbeat: policyEnforcement is mandatory, so a heartbeat receiver must notice when "
                            "alerting stops, or alertmanager.noReceiverReason must say why there is none")
    return problems


def _admission_problems(s: PlatformSettings) -> list[str]:
    """A mandatory stack enforces admission and fails closed; an open webhook must say why."""
    admission, key = s.mesh.admission, f"{PROJECT}:mesh.admission"
    problems = []
    if "admission" not in s.mesh.namespaces:
        problems.append(f"{PROJECT}:mesh.namespaces.admission: required value is missing (Gatekeeper runs there)")
    if s.policy_enforcement == "mandatory" and admission.enforcement_action != "deny":
        problems.append(f"{key}.enforcementAction: policyEnforcement is mandatory, so admission must refuse what the gate "
                        f"refuses (deny); got {admission.enforcement_action}")
    if s.policy_enforcement == "mandatory" and admission.failure_policy != "Fail":
        problems.append(f"{key}.failurePolicy: policyEnforcement is mandatory, so the webhook fails closed (Fail); "
                        "a failing webhook is handled by docs/runbooks/admission.md, not by admitting unchecked pods")
    if admission.failure_policy == "Ignore" and not (admission.failure_policy_reason or "").strip():
        problems.append(f"{key}.failurePolicyReason: failurePolicy Ignore admits every request unchecked while "
                        "Gatekeeper is down; say why that is acceptable for this stack")
    if s.high_availability and admission.gatekeeper.replicas < 2:
        problems.append(f"{key}.gatekeeper.replicas: highAvailability is on, so at least 2 are needed (the webhook "
                        f"fails closed); got {admission.gatekeeper.replicas}")
    return problems


def _edge_problems(s: PlatformSettings) -> list[str]:
    """The edge needs its two namespaces; route names and (host, path) pairs are unique; HA stacks run
    two of everything on the request path."""
    edge, key = s.mesh.edge, "somaagenthub:mesh.edge"
    if edge is None:
        return []
    problems = [f"somaagenthub:mesh.namespaces.{k}: the edge needs this namespace" for k in ("gateway", "policy")
                if k not in s.mesh.namespaces]
    names = [r.name for r in edge.routes]
    problems += [f"{key}.routes: route name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    places = [(r.host, r.path_prefix) for r in edge.routes]
    problems += [f"{key}.routes: host {h!r} and pathPrefix {p!r} are declared twice" for h, p in sorted({x for x in places if places.count(x) > 1})]
    problems += [f"{key}.routes.{r.name}.backend.namespace: {r.backend.namespace!r} names no namespace of this stack"
                 for r in edge.routes if s.namespace_named_by(r.backend.namespace) is None]
    if not edge.routes:
        problems.append(f"{key}.routes: at least one public route is needed (an edge without routes serves nothing)")
    if s.high_availability:
        for field_name, value in (("controller.replicas", edge.controller.replicas), ("proxyReplicas", edge.proxy_replicas),
                                  ("opaReplicas", edge.opa_replicas)):
            if value < 2:
                problems.append(f"{key}.{field_name}: highAvailability needs at least 2 (got {value})")
    jwt, jwt_key = edge.jwt, f"{key}.jwt"
    if (jwt.jwks_url is None) == (jwt.jwks_service is None):
        problems.append(f"{jwt_key}: set exactly one of jwksService (the identity service in the cluster) and jwksUrl "
                        "(a provider outside it)")
    elif jwt.jwks_service is not None and s.namespace_named_by(jwt.jwks_service.namespace) is None:
        problems.append(f"{jwt_key}.jwksService.namespace: {jwt.jwks_service.namespace!r} names no namespace of this stack")
    elif jwt.jwks_url is not None:
        host = urlsplit(jwt.jwks_url).hostname or ""
        port = urlsplit(jwt.jwks_url).port or 443
        declared = [name for name, d in (s.mesh.istio.egress.items() if s.mesh.istio else ())
                    if host in d.hosts and port in d.ports and "mesh.gateway" in d.namespaces]
        if not declared:
            problems.append(f"{jwt_key}.jwksUrl: {host}:{port} is outside the cluster, so it must be a destination declared in "
                            "somaagenthub:mesh.istio.egress for mesh.gateway (hosts, ports, cidrs); none is")
    return problems


def _signature_problems(s: PlatformSettings) -> list[str]:
    """Signature verification must fail closed in a mandatory stack and trust a well-formed key."""
    sig = s.mesh.signatures
    if sig is None:
        return [f"{PROJECT}:mesh.signatures: policyEnforcement is mandatory, so images must be verified at admission"] \
            if s.policy_enforcement == "mandatory" and s.phases.mesh else []
    key = f"{PROJECT}:mesh.signatures"
    problems = []
    if s.policy_enforcement == "mandatory":
        for name, value, wanted in (("mode", sig.mode, "enforce"), ("noMatchPolicy", sig.no_match_policy, "deny"),
                                    ("failurePolicy", sig.failure_policy, "Fail")):
            if value != wanted:
                problems.append(f"{key}.{name}: policyEnforcement is mandatory, so it must be {wanted}, got {value}")
    if s.high_availability and sig.replicas < 2:
        problems.append(f"{key}.replicas: highAvailability needs at least 2 webhook replicas, got {sig.replicas}")
    pk = sig.platform_key
    if bool(pk.public_key_pem) == bool(pk.kms):
        problems.append(f"{key}.platformKey: set exactly one of publicKeyPem or kms")
    if pk.public_key_pem and not PEM_PUBLIC_KEY.match(pk.public_key_pem):
        problems.append(f"{key}.platformKey.publicKeyPem: must be a PEM public key (-----BEGIN PUBLIC KEY-----), never a private key")
    if pk.kms and not KMS_REFERENCE.match(pk.kms):
        problems.append(f"{key}.platformKey.kms: must be a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://), got {pk.kms!r}")
    if sig.verify_by == "platformKey" and s.registry == "upstream":
        problems.append(f"{key}.verifyBy: platformKey verifies mirrored copies, but registry is upstream, whose images carry no platform signature")
    if not sig.egress:
        problems.append(f"{key}.egress: name the registries the verifier reads signatures from (and, for verifyBy signer, "
                        "the Sigstore TUF repository): its namespace is default-deny")
    for purpose, reason in sig.exempt_namespaces.items():
        if s.namespace_named_by(purpose) is None:
            problems.append(f"{key}.exemptNamespaces.{purpose}: names no platform namespace (write <phase>.<purpose>, e.g. mesh.admission)")
        if not str(reason).strip():
            problems.append(f"{key}.exemptNamespaces.{purpose}: say why it is left out")
    return problems


def _dependency_cycle(graph: Mapping[str, tuple[str, ...]]) -> list[str]:
    """One cycle of ``graph`` (name -> what it needs), as a path, or []."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for needed in graph.get(node, ()):
            if state.get(needed) == 1:
                return path[path.index(needed):] + [needed]
            if needed in graph and state.get(needed) is None and (found := visit(needed)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if state.get(node) is None and (found := visit(node)):
            return found
    return []


def _argocd_problems(s: PlatformSettings) -> list[str]:
    """Argo CD: a mandatory stack has no local admin and logs in through SSO; HA runs two of every stateless
    part; the signing keys are what they claim to be; the waves go dev -> staging -> prod into agents
    namespaces only; the dependencies have no cycle; every address outside the cluster is declared egress."""
    argo = s.governance.argocd
    if argo is None:
        return []
    key = f"{PROJECT}:governance.argocd"
    from components.governance.argocd.openpgp import OpenPgpError, fingerprint

    problems: list[str] = []
    if "gitops" not in s.governance.namespaces:
        problems.append(f"{PROJECT}:governance.namespaces.gitops: required value is missing (Argo CD runs there)")
    if s.policy_enforcement == "mandatory" and argo.admin_enabled:
        problems.append(f"{key}.adminEnabled: policyEnforcement is mandatory, so Argo CD's local admin is disabled; "
                        "people log in through sso")
    if not argo.admin_enabled and argo.sso is None:
        problems.append(f"{key}.sso: adminEnabled is false, so SSO is the only way in; set issuer, clientId, "
                        "clientSecretPath and groups")
    if s.high_availability:
        for name in ("repoServer", "server", "applicationSet"):
            replicas = getattr(argo, {"repoServer": "repo_server", "applicationSet": "application_set"}.get(name, name)).replicas
            if replicas < 2:
                problems.append(f"{key}.{name}.replicas: highAvailability needs at least 2 (got {replicas})")
    if not argo.signing_keys:
        problems.append(f"{key}.signingKeys: at least one key: the AppProjects accept only commits signed by a listed key")
    for i, signing in enumerate(argo.signing_keys):
        try:
            actual = fingerprint(signing.public_key)
        except OpenPgpError as err:
            problems.append(f"{key}.signingKeys[{i}].publicKey: {err}")
            continue
        if actual != signing.fingerprint:
            problems.append(f"{key}.signingKeys[{i}].fingerprint: {signing.fingerprint} is not this publicKey's "
                            f"fingerprint ({actual})")
    ids = [k.key_id for k in argo.signing_keys]
    problems += [f"{key}.signingKeys: key ID {d} is listed twice" for d in sorted({i for i in ids if ids.count(i) > 1})]
    names = [e.name for e in argo.environments]
    if not names:
        problems.append(f"{key}.environments: at least one promotion wave")
    elif names != sorted(set(names), key=ENVIRONMENTS.index):
        problems.append(f"{key}.environments: waves go {' -> '.join(ENVIRONMENTS)}, each once; got {' -> '.join(names)}")
    agents_namespaces = {ns.name for ns in s.agents.namespaces.values()}
    for i, env in enumerate(argo.environments):
        where = f"{key}.environments[{i}]"
        if env.server == IN_CLUSTER:
            if env.namespace is not None and env.namespace not in agents_namespaces:
                problems.append(f"{where}.namespace: in this cluster Argo CD deploys only into the agents phase's namespaces "
                                f"{sorted(agents_namespaces)} (Pulumi owns every other; docs/architecture/gitops.md); got {env.namespace}")
            if env.credentials_path:
                problems.append(f"{where}.credentialsPath: the cluster Argo CD runs in needs no credentials")
        else:
            if not env.credentials_path:
                problems.append(f"{where}.credentialsPath: {env.server} is another cluster; name the Vault path of its "
                                "Argo CD cluster secret (keys name, server, config, namespaces)")
            if env.namespace is None:
                problems.append(f"{where}.namespace: {env.server} is another cluster; name its agents namespace")
    gitops = s.governance.namespaces.get("gitops")
    vault_paths = [("sso.clientSecretPath", argo.sso.client_secret_path)] if argo.sso else []
    vault_paths += [(f"environments[{i}].credentialsPath", e.credentials_path) for i, e in enumerate(argo.environments) if e.credentials_path]
    for where, path in vault_paths:
        if path.split("/")[0] == "argocd":
            problems.append(f"{key}.{where}: not under argocd/, the folder of Argo CD's generated credentials, which its "
                            f"Redis consumer may read (use e.g. sso/oidc or clusters/<env>); got {path}")
        if ".." in path.split("/"):
            folder = f"{gitops.name}/" if gitops is not None else "the gitops namespace's folder"
            problems.append(f"{key}.{where}: a path inside {folder} (the only folder its store reads), written relative "
                            f"to it without '..'; got {path}")
    if not argo.applications:
        problems.append(f"{key}.applications: at least one application")
    for name, app in argo.applications.items():
        if not DNS_LABEL.match(name):
            problems.append(f"{key}.applications.{name}: the name must be a DNS label (it names Applications)")
        unknown = [d for d in app.depends_on if d not in argo.applications]
        if unknown:
            problems.append(f"{key}.applications.{name}.dependsOn: unknown application(s) {unknown}")
    cycle = _dependency_cycle({n: a.depends_on for n, a in argo.applications.items()})
    if cycle:
        problems.append(f"{key}.applications: dependsOn has a cycle {' -> '.join(cycle)}; no sync order exists")
    if argo.sso is not None:
        if not argo.sso.groups:
            problems.append(f"{key}.sso.groups: map at least one identity-provider group to admin or readonly")
        if "openid" not in argo.sso.requested_scopes:
            problems.append(f"{key}.sso.requestedScopes: OIDC needs the openid scope")
    return problems + _argocd_egress_problems(s, argo, key)


GITOPS_NAMESPACE_KEY = "governance.gitops"


def _argocd_egress_problems(s: PlatformSettings, argo: ArgoCdSettings, key: str) -> list[str]:
    """Each of Argo CD's destinations outside the cluster (the Git host for the repo-server, the OIDC issuer for
    the API server, each other cluster's API for the controller and the API server) is covered by a destination
    declared in ``mesh.istio.egress`` for ``governance.gitops``: same host, the URL's port, pods that include the
    component (by the labels the chart gives it). That one declaration opens it (the namespace is default-deny)."""
    from components.governance.argocd.chart_values import COMPONENT_LABELS

    needs = [("repository", argo.repository, ("repoServer",))]
    if argo.sso is not None:
        needs.append(("sso.issuer", argo.sso.issuer, ("server",)))
    needs += [(f"environments[{i}].server", env.server, ("controller", "server"))
              for i, env in enumerate(argo.environments) if env.server != IN_CLUSTER]
    declared = s.mesh.istio.egress if s.mesh.istio else {}
    problems = []
    for where, url, components in needs:
        host, port = urlsplit(url).hostname or "", urlsplit(url).port or 443
        for component in components:
            labels = COMPONENT_LABELS[component]
            if not any(host in d.hosts and port in d.ports and GITOPS_NAMESPACE_KEY in d.namespaces and d.selects(labels)
                       for d in declared.values()):
                problems.append(f"{key}.{where}: {host}:{port} is outside the cluster, so it must be a destination declared in "
                                f"{PROJECT}:mesh.istio.egress for {GITOPS_NAMESPACE_KEY} whose pods include Argo CD's {component} "
                                f"({', '.join(f'{k}: {v}' for k, v in labels.items())}); none is")
    return problems


def _compliance_problems(s: PlatformSettings) -> list[str]:
    """The plugin's source is a real destination, and a prod stack fetches it from its own mirror, not the internet."""
    compliance, key = s.governance.compliance, f"{PROJECT}:governance.compliance"
    if compliance is None:
        return []
    problems = []
    source = compliance.plugin_source
    if not source.why.strip():
        problems.append(f"{key}.pluginSource.why: say which host {source.cidr} stands for (NetworkPolicies name addresses, not hosts)")
    if s.policy_enforcement == "mandatory" and source.url.startswith("https://grafana.com/"):
        problems.append(f"{key}.pluginSource.url: policyEnforcement is mandatory, so the plugin comes from the platform's "
                        "mirror (the same bytes, same sha256), not from grafana.com at run time")
    if not s.phases.governance:
        problems.append(f"{key}: set, but phase governance is off (its dashboards and alerts would not exist); "
                        "remove it or turn the phase on")
    return problems + _shipper_problems(s)


SHIPPER_APP = "audit-shipper"


def _shipper_problems(s: PlatformSettings) -> list[str]:
    """The shipper runs only by its pinned image, in the governance namespace, with its Kafka credentials from Vault."""
    shipper = s.governance.compliance.shipper
    if shipper is None or not shipper.enabled:
        return []
    key = f"{PROJECT}:governance.compliance.shipper"
    problems = []
    pinned = _app_images_pinned()
    if pinned is not None and SHIPPER_APP not in pinned:
        problems.append(
            f"{key}.enabled: platform.lock.yaml pins no image for '{SHIPPER_APP}' in 'apps' (pinned: {', '.join(sorted(pinned)) or 'none yet'}); "
            "the program runs first-party images only by the digest the release pipeline built, signed and verified. "
            "Build, sign and pin it with `make images-release` (docs/apps.md, \"Release pipeline\"), or leave it off")
    if "governance" not in s.governance.namespaces:
        problems.append(f"{PROJECT}:governance.namespaces.governance: the shipper runs there; required when {key} is enabled")
    if not s.core.vault.configure:
        problems.append(f"{key}.enabled: its Kafka credentials come from Vault, and core.vault.configure is false; "
                        "leave it off until Vault is configured")
    return problems


def parse(raw_config: Mapping[str, Any], stack: str, secret_keys: frozenset[str] = frozenset()) -> PlatformSettings:
    """Validate ``{"somaagenthub:key": value}`` (values may be JSON strings) into settings."""
    problems: list[str] = []
    tree: dict[str, Any] = {}
    for key, value in raw_config.items():
        namespace, _, name = key.partition(":")
        if namespace != PROJECT:
            continue
        value = _decode(value)
        if key in secret_keys or (isinstance(value, Mapping) and "secure" in value):
            problems.append(f"{key}: stack files hold no secrets; generated credentials live in Vault")
            continue
        tree[name] = value
    tree.setdefault("stack", stack)
    settings, found = read(PlatformSettings, tree, PROJECT)
    problems.extend(p.replace(f"{PROJECT}.", f"{PROJECT}:", 1) for p in found)
    if settings is not None:
        problems.extend(
            _phase_problems(settings.phases) + _namespace_problems(settings) + _purpose_problems(settings) + _ha_problems(settings) + _vault_problems(settings)
                + _protection_problems(settings) + _backup_problems(settings) + _node_log_problems(settings) + _tempo_problems(settings)
                + _alerting_problems(settings) + _admission_problems(settings) + _edge_problems(settings) + _istio_problems(settings)
                + _identity_problems(settings) + _signature_problems(settings) + _kubecost_problems(settings) + _openfga_problems(settings)
                + _argocd_problems(settings) + _compliance_problems(settings) + _agent_service_problems(settings)
                + _agent_delivery_problems(settings)
                + _load_test_problems(settings)
                + _chaos_problems(settings)
        )
    else:
        phases, _ = read(Phases, tree.get("phases", {}), "phases")
        problems.extend(_phase_problems(phases) if phases else [])
    if problems:
        raise SettingsError(problems)
    return settings


def _seconds(text: str) -> float:
    """A settings duration (``30s``, ``250ms``, ``2m``) in seconds."""
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m|h|d|w|y)", text).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}[unit]


def _namespace_keys(s: PlatformSettings) -> dict[str, str]:
    """``<phase>.<purpose>`` -> namespace name, for every namespace of the stack."""
    keys = {f"core.{purpose}": ns.name for purpose, ns in (
        ("operators", s.core.namespaces.operators), ("secrets", s.core.namespaces.secrets), ("data", s.core.namespaces.data),
        ("observability", s.core.namespaces.observability), ("nodeLogs", s.core.namespaces.node_logs)) if ns is not None}
    for phase in ("mesh", "governance", "agents", "ops"):
        keys.update({f"{phase}.{purpose}": ns.name for purpose, ns in getattr(s, phase).namespaces.items()})
    return keys


WAYPOINT_IMAGE = "istio-proxyv2"
"""The catalog key of the waypoints' image (istio/proxyv2): istiod starts every waypoint from it."""


def _waypoint_image_pinned() -> bool:
    """Whether the catalog pins the waypoints' image. A broken lock file is reported by the render on its own."""
    from components import catalog

    try:
        return WAYPOINT_IMAGE in catalog.load().images
    except catalog.CatalogError:
        return True


def _istio_problems(s: PlatformSettings) -> list[str]:
    """Membership names real namespaces (never the node agents'), timeouts are positive and fit together,
    overrides name Services the platform serves in the mesh, egress names real namespaces and narrow CIDRs,
    and waypoints are asked for only once their image is pinned in the catalog."""
    istio = s.mesh.istio
    if istio is None:
        return [f"{PROJECT}:mesh.istio: required when the mesh phase is on"] if s.phases.mesh else []
    key = f"{PROJECT}:mesh.istio"
    problems: list[str] = []
    known = _namespace_keys(s)
    for field_name, listed in (("members", istio.members), ("waypoints", istio.waypoints)):
        for i, member in enumerate(listed):
            if member not in known:
                problems.append(f"{key}.{field_name}[{i}]: unknown namespace key '{member}'; known: {sorted(known)}")
    if "mesh.nodeAgents" in istio.members or "mesh.istio" in istio.members:
        problems.append(f"{key}.members: the control plane and node agent namespaces (mesh.istio, mesh.nodeAgents) run the mesh "
                        "and are never in it")
    for i, waypoint in enumerate(istio.waypoints):
        if waypoint not in istio.members:
            problems.append(f"{key}.waypoints[{i}]: '{waypoint}' is not in members (a waypoint serves in-mesh namespaces only)")

    def timing(prefix: str, timeout: str | None, retries: RetrySettings | None) -> None:
        for name, value in (("requestTimeout", timeout), ("retries.perTryTimeout", retries.per_try_timeout if retries else None)):
            if value is not None and _seconds(value) <= 0:
                problems.append(f"{prefix}.{name}: must be longer than 0 (got {value})")
        if retries is not None:
            unknown = [c for c in retries.retry_on if c not in RETRY_ON and not c.isdigit()]
            if unknown:
                problems.append(f"{prefix}.retries.retryOn: unknown condition(s) {unknown}; known: {list(RETRY_ON)}")
        if timeout is not None and retries is not None and retries.attempts and _seconds(retries.per_try_timeout) > _seconds(timeout):
            problems.append(f"{prefix}.retries.perTryTimeout: {retries.per_try_timeout} is longer than requestTimeout {timeout}")

    timing(f"{key}.traffic", istio.traffic.request_timeout, istio.traffic.retries)
    served = {known[m] for m in istio.waypoints if m in known}
    for service, override in istio.overrides.items():
        where = f"{key}.overrides.{service}"
        namespace, _, name = service.partition("/")
        if not name or namespace not in served or not DNS_LABEL.match(name):
            problems.append(f"{where}: unknown service: must read <namespace>/<service> with a namespace a waypoint serves "
                            f"({sorted(served)}) and a Service name")
        timing(where, override.request_timeout or istio.traffic.request_timeout, override.retries or istio.traffic.retries)
    if istio.waypoints and not _waypoint_image_pinned():
        problems.append(
            f"{key}.waypoints: {list(istio.waypoints)} need the waypoint image, and platform.lock.yaml has no "
            f"'{WAYPOINT_IMAGE}' entry (docker.io/istio/proxyv2 by digest): istiod would start each waypoint from "
            "global.hub/global.tag, an unpinned image that admission refuses in prod (Gatekeeper SomaCatalogImages, "
            "signature verification), so every Service enrolled in the waypoint would lose its traffic. Set waypoints: [] "
            f"until '{WAYPOINT_IMAGE}' is pinned (docs/architecture/mesh.md, \"Traffic defaults\")")
    for name, dest in istio.egress.items():
        where = f"{key}.egress.{name}"
        for i, member in enumerate(dest.namespaces):
            if member not in known:
                problems.append(f"{where}.namespaces[{i}]: unknown namespace key '{member}'")
        for i, block in enumerate(dest.cidrs):
            if (message := _cidr(block)) is not None:
                problems.append(f"{where}.cidrs[{i}]: {message}")
        for i, port in enumerate(dest.ports):
            if not 0 < port < 65536:
                problems.append(f"{where}.ports[{i}]: {port} is not a port")
        for label, values in dest.pods_in.items():
            if not values:
                problems.append(f"{where}.podsIn.{label}: list at least one value (an empty list selects no pod)")
        if not dest.hosts or not dest.ports or not dest.cidrs or not dest.namespaces:
            problems.append(f"{where}: hosts, ports, cidrs and namespaces are all required")
        if not dest.reason.strip():
            problems.append(f"{where}.reason: say why the platform reaches this destination")
    return problems


KUBECOST_IMAGES = ("kubecost-cost-model", "kubecost-frontend")
"""The catalog keys of the images Kubecost's chart runs with the platform's values (cost-model, frontend)."""


CHAOS_IMAGES = ("chaos-mesh-controller", "chaos-mesh-daemon")
"""The catalog keys of the images Chaos Mesh's chart runs with the platform's values (dashboard and DNS server off)."""
CHAOS_STACKS = ("staging",)
"""Where fault injection may run: the stack a release passes through before prod, never prod itself."""


def _chaos_problems(s: PlatformSettings) -> list[str]:
    """Chaos Mesh only in staging, in its own namespace, and only with its images pinned."""
    chaos = s.ops.chaos
    if chaos is None:
        if "chaos" in s.ops.namespaces:
            return [f"{PROJECT}:ops.namespaces.chaos: ops.chaos is not set, so Chaos Mesh is not installed and this namespace "
                    "(Pod Security privileged) would hold nothing; remove it or configure ops.chaos"]
        return []
    key = f"{PROJECT}:ops.chaos"
    problems = []
    if s.stack not in CHAOS_STACKS:
        problems.append(f"{key}: fault injection runs only in the {' and '.join(CHAOS_STACKS)} stack, not in {s.stack}: its daemon is "
                        "privileged and enters other pods' namespaces, and the experiments kill and partition the platform's "
                        "own services (the gate's no-fault-injection rule refuses it wherever the policy config does not allow it)")
    if "chaos" not in s.ops.namespaces:
        problems.append(f"{PROJECT}:ops.namespaces.chaos: Chaos Mesh runs in its own namespace (Pod Security privileged); "
                        "required when ops.chaos is set")
    if s.high_availability and chaos.controller_replicas < 2:
        problems.append(f"{key}.controllerReplicas: highAvailability is on, so at least 2 controller managers are needed "
                        f"(leader election); got {chaos.controller_replicas}")
    for needed, why in (("mesh", "the gateway and OpenFGA experiments"), ("governance", "the OpenFGA partition"),
                        ("agents", "the gateway, memory gateway and orchestrator experiments")):
        if not getattr(s.phases, needed):
            problems.append(f"{key}: phase '{needed}' is disabled, but {why} target it")
    missing = _images_missing(CHAOS_IMAGES)
    if missing:
        problems.append(f"{key}: platform.lock.yaml pins no {', '.join(missing)} (ghcr.io/chaos-mesh/chaos-mesh and chaos-daemon "
                        "by digest); the chart would otherwise run tag-only images that the gate and admission refuse")
    return problems


def _images_missing(keys: tuple[str, ...]) -> list[str]:
    """Which of ``keys`` platform.lock.yaml does not pin. A broken lock file is reported by the render on its own."""
    from components import catalog

    try:
        pinned = catalog.load().images
    except catalog.CatalogError:
        return []
    return [key for key in keys if key not in pinned]


def _kubecost_images_missing() -> list[str]:
    """The Kubecost images platform.lock.yaml does not pin."""
    return _images_missing(KUBECOST_IMAGES)


def _kubecost_problems(s: PlatformSettings) -> list[str]:
    """Kubecost runs in ``governance.cost`` and only once its images are pinned by digest."""
    if s.governance.kubecost is None:
        return []
    key = f"{PROJECT}:governance.kubecost"
    problems = []
    if "cost" not in s.governance.namespaces:
        problems.append(f"{PROJECT}:governance.namespaces.cost: Kubecost runs in this namespace; required when governance.kubecost is set")
    missing = _kubecost_images_missing()
    if missing:
        problems.append(
            f"{key}: platform.lock.yaml pins no {', '.join(missing)} (gcr.io/kubecost1/cost-model and frontend by digest); "
            "no public source names their digests, and the chart would otherwise run tag-only images that the gate and "
            "admission refuse. Leave governance.kubecost unset until they are pinned (docs/architecture/cost.md, \"Blocked\")")
    return problems


LOAD_TEST_IMAGES = ("k6-operator-controller", "k6", "k6-operator-starter")
"""The catalog keys of the images the load tests run: the operator's controller, k6 (runner and initializer) and the
operator's starter (starter and stopper)."""


def _load_test_images_missing() -> list[str]:
    """The load tests' images platform.lock.yaml does not pin."""
    return _images_missing(LOAD_TEST_IMAGES)


def _load_test_problems(s: PlatformSettings) -> list[str]:
    """Load tests run in ``ops.ops`` against a deployed gateway, only with every image pinned, and not in prod unless
    the stack says why: they put synthetic runs, memory writes and load on the production data and capacity, and
    promotion to prod already requires staging's green load result for the same release."""
    tests = s.ops.load_tests
    if tests is None:
        return []
    key = f"{PROJECT}:ops.loadTests"
    problems = []
    missing = _load_test_images_missing()
    if missing:
        why = ("no public source names the full digest of the k6 operator's controller image of release 1.6.0 (only its "
               "prefix), and " if "k6-operator-controller" in missing else "")
        problems.append(
            f"{key}: platform.lock.yaml pins no {', '.join(missing)} by digest; {why}the operator would otherwise run "
            "tag-only images that the gate and admission refuse. Leave ops.loadTests unset until they are pinned "
            "(docs/load-tests.md, \"Blocked\")")
    if "ops" not in s.ops.namespaces:
        problems.append(f"{PROJECT}:ops.namespaces.ops: the k6 operator and its runners run there; required when ops.loadTests is set")
    if "gateway" not in s.agents.services.enabled() or not s.phases.agents:
        problems.append(f"{key}: the TestRuns target the gateway (agents.services.gateway), which this stack does not deploy")
    if not s.core.vault.configure:
        problems.append(f"{key}: the runners' bearer token comes from Vault (tokenPath), and core.vault.configure is false")
    if s.stack == "prod" and not (tests.production_reason or "").strip():
        problems.append(f"{key}.productionReason: load tests do not run in prod: they write runs and memory records into "
                        "production data and take its users' capacity, and promotion to prod already needs staging's green "
                        "load result for the same release. Say why this stack must run them, or leave ops.loadTests unset")
    from components.ops.scenarios import ScenarioError, load as load_scenarios, select

    try:
        select(load_scenarios(), list(tests.scenarios))
    except ScenarioError as error:
        problems.append(f"{key}.scenarios: {error}")
    return problems


def _app_images_pinned() -> frozenset[str] | None:
    """The services platform.lock.yaml pins in ``apps`` (None: the lock is broken, which the render reports on its own)."""
    from components import catalog

    try:
        return frozenset(catalog.load().apps)
    except catalog.CatalogError:
        return None


OPENFGA_CLIENTS = ("gateway", "orchestrator", "tools", "memory")
"""The services that ask OpenFGA (the gateway per request, the orchestrator before runs and tool calls, the tool
service before each call, the memory gateway per collection)."""


def _agent_service_problems(s: PlatformSettings) -> list[str]:
    """A service is enabled only with its image pinned by the release pipeline, what it needs from earlier phases
    (Vault, the database, OpenFGA), what the platform does not run for it (Redis, a model endpoint), and enough
    replicas in an HA stack."""
    services = s.agents.services
    enabled = services.enabled()
    if not enabled:
        return []
    problems: list[str] = []
    pinned = _app_images_pinned()
    for name in enabled:
        key = f"{PROJECT}:agents.services.{name}"
        service = getattr(services, name)
        if pinned is not None and name not in pinned:
            problems.append(
                f"{key}.enabled: platform.lock.yaml pins no image for '{name}' in 'apps' (pinned: {', '.join(sorted(pinned)) or 'none yet'}); "
                "the program runs first-party images only by the digest the release pipeline built, signed and verified. "
                "Build, sign and pin it with `make images-release` (docs/apps.md, \"Release pipeline\"), or leave it off")
        if s.high_availability and service.replicas < 2:
            problems.append(f"{key}.replicas: highAvailability is on, so at least 2 are needed (a rollout or a node drain "
                            f"would otherwise stop the service); got {service.replicas}")
        if not s.core.vault.configure:
            problems.append(f"{key}.enabled: its secrets come from Vault, and core.vault.configure is false "
                            "(docs/runbooks/core-secrets.md); leave it off until Vault is configured")
        if name in OPENFGA_CLIENTS and s.governance.openfga is None:
            problems.append(f"{key}.enabled: it asks OpenFGA for every decision, and governance.openfga is not set")
        if "agents" not in s.agents.namespaces:
            problems.append(f"{PROJECT}:agents.namespaces.agents: the services run there; required when {name} is enabled")
    if not s.phases.agents:
        problems.append(f"{PROJECT}:agents.services: {', '.join(enabled)} enabled while the agents phase is off")
    gateway, orchestrator, identity = services.gateway, services.orchestrator, services.identity
    if "gateway" in enabled:
        if gateway.redis is None:
            problems.append(f"{PROJECT}:agents.services.gateway.redis: required (the tenants' rate limits live in Redis, and "
                            "the platform runs no Redis for the services; Argo CD's is its own): name its url and where it runs")
        if "identity" not in enabled:
            problems.append(f"{PROJECT}:agents.services.gateway.enabled: the gateway verifies tokens with identity's JWKS; enable identity too")
    if "orchestrator" in enabled:
        for field_name, value in (("model", orchestrator.model), ("modelName", orchestrator.model_name),
                                  ("modelApiKeyPath", orchestrator.model_api_key_path)):
            if not value:
                problems.append(f"{PROJECT}:agents.services.orchestrator.{field_name}: required (the orchestrator's "
                                "OpenAI-compatible model endpoint, the model it serves, and where in Vault its key is kept)")
    for name, endpoint in (("gateway.redis", gateway and gateway.redis), ("orchestrator.model", orchestrator and orchestrator.model)):
        if endpoint and (endpoint.cidr is None) == (endpoint.namespace is None):
            problems.append(f"{PROJECT}:agents.services.{name}: name either namespace (and pods) inside the cluster or cidr outside it, not both")
    if "identity" in enabled and identity.issuer is None and s.mesh.edge is None:
        problems.append(f"{PROJECT}:agents.services.identity.issuer: required when mesh.edge is not set (it defaults to mesh.edge.jwt.issuer)")
    return problems


def _agent_delivery_problems(s: PlatformSettings) -> list[str]:
    """One owner per object (docs/architecture/gitops.md): where Argo CD deploys the applications, the services'
    application kinds go to the applications repository, into the folder of this stack's own wave, for every
    enabled service a folder the ApplicationSet syncs."""
    d, argo, enabled = s.agents.delivery, s.governance.argocd, s.agents.services.enabled()
    key = f"{PROJECT}:agents.delivery"
    problems: list[str] = []
    if argo is not None and d.mode != "argocd":
        problems.append(f"{key}.mode: governance.argocd is set, so Argo CD owns the application kinds (Deployment, Service, "
                        "PodDisruptionBudget...) in the agents namespace; set argocd (the services' manifests are rendered "
                        f"into the applications repository, <path>/<environment>); got {d.mode}")
    if d.mode == "pulumi":
        for name, value in (("environment", d.environment), ("checkout", d.checkout), ("paths", d.paths)):
            if value:
                problems.append(f"{key}.{name}: only with mode argocd (mode is pulumi: the services go to the cluster)")
        return problems
    if d.environment is None:
        problems.append(f"{key}.environment: required with mode argocd: this stack's promotion wave (dev, staging or "
                        "prod); its services' manifests go to <path>/<environment> in the applications repository")
    if not d.checkout:
        problems.append(f"{key}.checkout: required with mode argocd: the working copy of the applications repository "
                        "where `pulumi up` writes <path>/<environment> (relative to the project directory, or absolute)")
    for name, path in d.paths.items():
        if name not in AGENT_SERVICES:
            problems.append(f"{key}.paths.{name}: not a service (known: {', '.join(AGENT_SERVICES)})")
        elif not APPLICATION_FOLDER.match(path):
            problems.append(f"{key}.paths.{name}: must be a relative folder path such as deploy/{name}; got {path!r}")
        elif argo is not None and name in argo.applications and argo.applications[name].path != path:
            problems.append(f"{key}.paths.{name}: {path} is not governance.argocd.applications.{name}.path "
                            f"({argo.applications[name].path}), the folder Argo CD syncs")
    if argo is not None and d.environment is not None:
        waves = {e.name: e for e in argo.environments}
        if d.environment not in waves:
            problems.append(f"{key}.environment: {d.environment} is not a wave of governance.argocd.environments "
                            f"({', '.join(waves) or 'none'}), so Argo CD would never sync its folder")
        elif waves[d.environment].server != IN_CLUSTER:
            here = [e.name for e in argo.environments if e.server == IN_CLUSTER]
            problems.append(f"{key}.environment: the {d.environment} wave deploys to {waves[d.environment].server}, another "
                            f"cluster; this stack renders the wave of the cluster it runs in ({', '.join(here) or 'none'})")
    if argo is None and "gitops" not in s.governance.namespaces:
        problems.append(f"{PROJECT}:governance.namespaces.gitops: required: agents.delivery.mode is argocd and this stack "
                        "runs no Argo CD, so its wave is driven by a hub's Argo CD, which deploys here as the service "
                        "account argocd-hub of this namespace (docs/architecture/gitops.md, \"Which clusters\")")
    for name in enabled:
        if argo is not None and name not in argo.applications:
            problems.append(f"{PROJECT}:governance.argocd.applications.{name}: required: agents.services.{name} is enabled "
                            "and delivered by Argo CD, which syncs only the applications listed here (name its path)")
        elif argo is None and name not in d.paths:
            problems.append(f"{key}.paths.{name}: required: this stack has no Argo CD (its wave is driven by another "
                            f"stack's, e.g. prod's), so name {name}'s folder in the applications repository, the same as "
                            f"that stack's governance.argocd.applications.{name}.path")
    return problems


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def load() -> PlatformSettings:
    """Read the running stack's configuration from the Pulumi runtime."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    raw = dict(runtime_config.get_config_env() or {})
    raw.update(runtime_config.CONFIG.get())
    secret_keys = frozenset(k for k in raw if runtime_config.is_config_secret(k))
    return parse(raw, pulumi.get_stack(), secret_keys)
