"""The first-party services of apps/, deployed through the kit (issue 13 point 5, issue 15 point 6).

Each enabled service (``agents.services.<name>``) is a kit :class:`Workload` in the agents namespace: its image
by the digest the release pipeline pinned (``catalog.app_image``), non-root UID 10001 with a read-only root
filesystem (the images are built for it, docs/apps.md), probes on ``/healthz`` and ``/readyz``, OTLP to the
collector, a PodDisruptionBudget and spreading above one replica. Its settings are the ``SOMA_*`` variables
its ``settings.py`` reads; every credential arrives from Vault through External Secrets as a read-only file
(``SOMA_<NAME>_FILE``), never as an environment value. Who talks to whom is declared once per flow through the
kit (``ctx.flows``): the NetworkPolicies here and the mesh's AuthorizationPolicies from the same ledger.

Where Argo CD deploys the applications (``agents.delivery.mode: argocd``), each service's application objects
(Deployment, Service, PodDisruptionBudget) are registered with a provider of their own that renders YAML into the
applications repository's working copy, ``<checkout>/<path>/<environment>`` (:func:`manifests_provider`), instead
of applying them; everything else of the service stays with the cluster (docs/architecture/gitops.md).

A service is one entry of :data:`SPECS`: who calls it, whether it asks OpenFGA, which database it owns. What a
service needs beyond that (identity's Vault transit key, the gateway's Redis, the orchestrator's model) is in
:func:`service_env` and :class:`AgentServicesDeployment`.
"""
from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_vault as vault

from components.core import CoreOutputs
from components.core.data import qdrant
from components.core.interfaces import DatabaseAccess, SecretRef
from components.core.secrets import vault_server
from components.core.secrets.vault_access import VAULT_AUDIENCE
from components.governance.openfga import OpenFgaOutputs
from components.kit import Egress, KitContext, Peer, SecretFile, ServiceAccountToken, Workload, WorkloadArgs, allow_ingress, selector
from components.kit.labels import client_label
from components.settings import AgentService, AgentServices, PlatformSettings

PORT = 8080
UID = 10001
"""The user every app image runs as (tools/images: ``User 10001:10001``)."""
SECRETS_DIR = "/var/run/secrets/soma"
"""The base's default ``SOMA_SECRETS_DIR``; each delivered Secret is mounted in a folder of its own under it."""
VAULT_TOKEN_DIR = "/var/run/secrets/vault"
SHUTDOWN_GRACE_SECONDS = 20
"""The base's default drain; the pod's grace is 10 s above it."""
METRICS = "otlp"
"""soma_service pushes its metrics over OTLP to the collector (``SOMA_OTLP_ENDPOINT``), which forwards them to
Prometheus' OTLP receiver; the services serve no metrics port, so the kit declares no ServiceMonitor."""
AUDITORS = ("gateway", "orchestrator", "tools", "memory")
"""The services that write audit events (soma_service.audit): to Core's Kafka as ``audit-producer`` when Core offers
it (``CoreOutputs.kafka_producer``), else as JSON log lines (:data:`LOG_SINK_REASON`)."""
LOG_SINK_REASON = ("Core offers no Kafka producer access (CoreOutputs.kafka_producer is None): audit events are JSON log "
                   "lines, shipped to Loki by the node log agent")
"""Said at preview for each service that falls back to the log sink. Core offers Kafka whenever its data stores exist,
which this phase already requires (the services' databases), so today's stacks never fall back."""


@dataclass(frozen=True)
class ServiceSpec:
    """What the phase must know about one service: who calls it, whether it asks OpenFGA, the database it owns
    (on the platform's PostgreSQL) and whether its settings take that database as one DSN file (``dsn``) or as a
    DSN without password plus a password file (``password``)."""

    component: str
    callers: tuple[str, ...] = ()
    openfga: bool = False
    database: str | None = None
    database_secret: str = "password"
    qdrant: bool = False
    """The platform's Qdrant (Core's data namespace), with a copy of its API key."""


SPECS: dict[str, ServiceSpec] = {
    "identity": ServiceSpec("identity", callers=("gateway",), database="identity"),
    "gateway": ServiceSpec("api-gateway", openfga=True),
    "orchestrator": ServiceSpec("orchestrator", callers=("gateway",), openfga=True, database="orchestrator", database_secret="dsn"),
    "tools": ServiceSpec("tool-service", callers=("gateway", "orchestrator"), openfga=True),
    "memory": ServiceSpec("memory-gateway", callers=("gateway", "orchestrator", "tools"), openfga=True, qdrant=True),
}
"""The edge's proxies reach identity and the gateway through the Mesh phase's route flows (mesh.edge.routes)."""
UPSTREAMS = ("orchestrator", "tools", "memory")
"""The gateway's route table upstream names (apps/gateway routes.py), each the service of that name."""


def url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc.cluster.local:{PORT}"


def postgres_dsn(database: DatabaseAccess) -> str:
    """libpq keywords without the password. TLS is required; CloudNativePG's CA lives in the data namespace, so the
    server name is not verified (as OpenFGA's and Grafana's connections)."""
    return f"host={database.host} port={database.port} dbname={database.name} user={database.user} sslmode=require"


def postgres_uri(database: DatabaseAccess, password: pulumi.Input[str]) -> pulumi.Output[str]:
    """The whole connection as one secret file (the orchestrator's ``database_dsn``); the password is letters and
    digits (``SecretGrants.password``), so it needs no escaping."""
    return pulumi.Output.concat("postgresql://", database.user, ":", password, "@", database.address, "/", database.name,
                                "?sslmode=require")


def common_env(name: str, version: str, ctx: KitContext) -> dict[str, str]:
    return {"SOMA_SERVICE_NAME": name, "SOMA_SERVICE_VERSION": version, "SOMA_HTTP_PORT": str(PORT),
            "SOMA_OTLP_ENDPOINT": ctx.telemetry.otlp_endpoint, "SOMA_SHUTDOWN_GRACE_SECONDS": str(SHUTDOWN_GRACE_SECONDS)}


def secret_file_env(setting: str, ref: SecretRef, key: str) -> tuple[str, str]:
    """``SOMA_<SETTING>_FILE`` pointing at one key of a Secret mounted at ``<SECRETS_DIR>/<Secret name>``."""
    return f"SOMA_{setting.upper()}_FILE", f"{SECRETS_DIR}/{ref.name}/{key}"


@dataclass(frozen=True)
class AuditWiring:
    """What a service that audits needs to produce to Core's Kafka: its ``SOMA_AUDIT_*`` settings, the password and
    CA files, the flow to the brokers and the label their listener admits; or only ``SOMA_AUDIT_SINK=log`` when Core
    offers no Kafka (:data:`LOG_SINK_REASON`)."""

    env: dict[str, str]
    files: tuple[SecretFile, ...] = ()
    egress: tuple[Egress, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


def audit_wiring(core: CoreOutputs, name: str, namespace: str, after: list[pulumi.Resource],
                 resource: pulumi.Resource) -> AuditWiring:
    """One service's audit sink, the same for the agents services and the Governance phase's audit shipper: the
    ``audit-producer`` credentials Core grants ``name`` in ``namespace`` (CoreOutputs.kafka_producer), mounted as
    files, never environment values (the CA file is a certificate, mounted the same way)."""
    if core.kafka_producer is None:
        pulumi.log.warn(f"{name}: {LOG_SINK_REASON}", resource)
        return AuditWiring({"SOMA_AUDIT_SINK": "log"})
    kafka = core.kafka_producer(name, namespace, after)
    env = {"SOMA_AUDIT_SINK": "kafka", "SOMA_AUDIT_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "SOMA_AUDIT_KAFKA_USERNAME": kafka.username, "SOMA_AUDIT_TOPIC": kafka.topic}
    files = []
    for ref, key, setting in ((kafka.password, kafka.password_key, "audit_kafka_password"),
                              (kafka.ca, kafka.ca_key, "audit_kafka_ca")):
        files.append(SecretFile(ref.name, (key,), f"{SECRETS_DIR}/{ref.name}"))
        env.update((secret_file_env(setting, ref, key),))
    return AuditWiring(env, tuple(files), (Egress(to=kafka.peer, ports=(kafka.port,)),), dict(kafka.client_labels))


class AgentServicesDeployment(pulumi.ComponentResource):
    """``somaagenthub:agents:Services``: the enabled services, their secrets, Vault access and flows."""

    def __init__(self, services: AgentServices, platform: PlatformSettings, namespace: str, ctx: KitContext, core: CoreOutputs,
                 openfga: OpenFgaOutputs | None, after: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:agents:Services", "services", None, opts)
        if core.secrets is None or core.database is None:
            raise ValueError("agents.services need Core's Vault and database (core.vault.configure true)")
        self._child = pulumi.ResourceOptions(parent=self, depends_on=after)
        self.enabled = services.enabled()
        self.namespace, self.ctx, self.core, self.openfga, self.after = namespace, ctx, core, openfga, after
        self.workloads: dict[str, Workload] = {}
        delivery = platform.agents.delivery
        self.manifests = {name: manifests_provider(name, posixpath.join(delivery.checkout, folder), self)
                          for name, folder in delivery.folders(self.enabled, platform.governance.argocd).items()}
        """Service -> the provider its application objects are rendered with (``argocd`` delivery only)."""
        for name in self.enabled:
            settings: AgentService = getattr(services, name)
            self.workloads[name] = self._service(name, settings, services, platform)
        self.register_outputs({"services": {n: w.address for n, w in self.workloads.items()}})

    def _grant(self, name: str, secret: str, values: dict) -> SecretRef:
        """A secret of ``name`` delivered through its own ESO service account ``<name>-secrets`` (never the pod's)."""
        return self.core.secrets.grant(name, self.namespace, f"{name}-secrets", secret, values, create_service_account=True,
                                       after=self.after)

    def _service(self, name: str, settings: AgentService, services: AgentServices, platform: PlatformSettings) -> Workload:
        spec, ns, ctx = SPECS[name], self.namespace, self.ctx
        version = ctx.catalog.app_image(name).tag
        env = common_env(name, version, ctx)
        files: list[SecretFile] = []
        egress: list[Egress] = []
        labels: dict[str, str] = {}

        def mount(ref: SecretRef, *keys_settings: tuple[str, str]) -> None:
            files.append(SecretFile(ref.name, tuple(k for k, _ in keys_settings), f"{SECRETS_DIR}/{ref.name}"))
            env.update(secret_file_env(setting, ref, key) for key, setting in keys_settings)

        if spec.openfga and self.openfga is not None:
            ids = self.core.secrets.share(f"{name}-openfga", ns, self.openfga.ids_path, self.openfga.ids_keys, after=self.after)
            mount(ids, ("store-id", "openfga_store_id"), ("model-id", "openfga_model_id"))
            env["SOMA_OPENFGA_API_URL"] = self.openfga.http_url
            egress.append(Egress(to=self.openfga.server, ports=(self.openfga.ports[0],)))
        if spec.database is not None:
            database = self.core.database(spec.database)
            password = self.core.secrets.password(database.password)
            if spec.database_secret == "dsn":
                mount(self._grant(name, "database", {"dsn": postgres_uri(database, password)}), ("dsn", "database_dsn"))
            else:
                env["SOMA_DATABASE_DSN"] = postgres_dsn(database)
                mount(self._grant(name, "database", {"password": password}), ("password", "database_password"))
            egress.append(Egress(to=Peer(namespace=database.namespace, pods=dict(database.pods)), ports=(database.port,)))
            labels.update(database.client_labels)
        if spec.qdrant:
            api_key = self.core.secrets.password(qdrant.API_KEY_PASSWORD, qdrant.API_KEY_LENGTH)
            mount(self._grant(name, "qdrant", {"api-key": api_key}), ("api-key", "qdrant_api_key"))
            env["SOMA_QDRANT_URL"] = f"http://{qdrant.NAME}.{self.core.data_namespace}.svc.cluster.local:{qdrant.HTTP_PORT}"
            egress.append(Egress(to=Peer(namespace=self.core.data_namespace, pods=dict(qdrant.POD_LABELS)), ports=(qdrant.HTTP_PORT,)))
            labels.update(client_label("qdrant"))
        callees = [c for c, s in SPECS.items() if name in s.callers and c in self.enabled]
        egress.extend(Egress(to=Peer(pods=selector(c)), ports=(PORT,)) for c in callees)
        token = None
        if name == "identity":
            token = ServiceAccountToken(audience=VAULT_AUDIENCE, path=VAULT_TOKEN_DIR)
            env.update(self._identity(services, platform))
            vault_ca = self.core.vault_ca(ns, self.after) if self.core.vault_ca else None
            if vault_ca is not None:  # Vault serves TLS (raft): identity trusts exactly its CA, as a mounted file
                mount(vault_ca, ("ca.crt", "vault_ca"))
            elif self.core.vault.tls:
                raise ValueError("identity: Core's Vault serves TLS but offers no copy of its CA (CoreOutputs.vault_ca)")
            egress.append(Egress(to=Peer(namespace=self.core.secrets_namespace, pods=dict(vault_server.POD_LABELS)), ports=(vault_server.PORT,)))
        if name == "gateway":
            gateway = services.gateway
            edge_jwt = platform.mesh.edge.jwt if platform.mesh.edge else None
            identity = services.identity
            env.update({
                "SOMA_JWT_ISSUER": (identity.issuer if identity and identity.issuer else edge_jwt.issuer),
                "SOMA_JWT_AUDIENCE": ((identity.audiences if identity and identity.audiences else edge_jwt.audiences)[0]),
                "SOMA_JWKS_URL": f"{url('identity', ns)}/.well-known/jwks.json",
                "SOMA_REDIS_URL": gateway.redis.url,
                "SOMA_RATE_LIMIT": json.dumps({"rate": gateway.rate, "burst": gateway.burst}),
                "SOMA_UPSTREAMS": json.dumps({u: url(u, ns) for u in UPSTREAMS if u in self.enabled}, sort_keys=True),
            })
            if gateway.redis_password_path:
                mount(self.core.secrets.share("gateway-redis", ns, gateway.redis_password_path, ("password",), after=self.after),
                      ("password", "redis_password"))
            egress.append(Egress(to=endpoint_peer(gateway.redis), ports=(gateway.redis.port,)))
        if name == "orchestrator":
            orchestrator = services.orchestrator
            env.update({"SOMA_MODEL_BASE_URL": orchestrator.model.url, "SOMA_MODEL_NAME": orchestrator.model_name})
            if "tools" in self.enabled:  # runs load their tools from the tool service's MCP endpoint
                env["SOMA_TOOLS_MCP_URL"] = f"{url('tools', ns)}/mcp"
            mount(self.core.secrets.share("orchestrator-model", ns, orchestrator.model_api_key_path, ("api-key",), after=self.after),
                  ("api-key", "model_api_key"))
            egress.append(Egress(to=endpoint_peer(orchestrator.model), ports=(orchestrator.model.port,)))
        if name in AUDITORS:
            audit = audit_wiring(self.core, name, ns, self.after, self)
            env.update(audit.env)
            files.extend(audit.files)
            egress.extend(audit.egress)
            labels.update(audit.labels)
        callers = tuple(Peer(pods=selector(c)) for c in spec.callers if c in self.enabled)
        return Workload(WorkloadArgs(
            name=name, namespace=ns, component=spec.component, image=name, app_image=True, port=PORT,
            resources=settings.resources, replicas=settings.replicas, run_as_user=UID, env=env, secret_files=tuple(files),
            token=token, callers=callers, egress=tuple(egress), pod_labels=labels,
            termination_grace_seconds=SHUTDOWN_GRACE_SECONDS + 10, metrics=METRICS,
        ), ctx, pulumi.ResourceOptions(parent=self, depends_on=self.after), applications=self.manifests.get(name))

    def _identity(self, services: AgentServices, platform: PlatformSettings) -> dict[str, str]:
        """identity signs in Vault's transit engine: the mount, a non-exportable key, a policy that may only sign with it
        and read its public versions, a Kubernetes-auth role for identity's own ServiceAccount, and Vault's ingress."""
        identity, admin, ns = services.identity, self.core.vault, self.namespace
        edge_jwt = platform.mesh.edge.jwt if platform.mesh.edge else None
        on_vault = pulumi.ResourceOptions(parent=self, provider=admin.provider)
        mount = vault.Mount(f"{ns}-identity-transit", path=identity.transit_mount, type="transit",
                            description="identity's token signing keys (apps/identity)", opts=on_vault)
        after_mount = pulumi.ResourceOptions.merge(on_vault, pulumi.ResourceOptions(depends_on=[mount]))
        vault.transit.SecretBackendKey(f"{ns}-identity-signing-key", backend=mount.path, name=identity.signing_key,
                                       type="ecdsa-p256" if identity.signing_algorithm == "ES256" else "rsa-2048",
                                       exportable=False, allow_plaintext_backup=False, deletion_allowed=False, opts=after_mount)
        role = signer_role(ns)
        policy = vault.Policy(role, name=role, policy=identity_policy_hcl(identity.transit_mount, identity.signing_key),
                              opts=on_vault)
        vault.kubernetes.AuthBackendRole(
            role, backend=admin.kubernetes_auth_path, role_name=role, bound_service_account_names=["identity"],
            bound_service_account_namespaces=[ns], audience=VAULT_AUDIENCE, token_policies=[role], token_ttl=3600,
            token_max_ttl=86400, token_type="service", opts=pulumi.ResourceOptions.merge(on_vault, pulumi.ResourceOptions(depends_on=[policy])))
        allow_ingress(f"vault-from-{ns}-identity", self.core.secrets_namespace, vault_server.POD_LABELS,
                      [Peer(namespace=ns, pods=selector("identity"))], [vault_server.PORT], pulumi.ResourceOptions(parent=self),
                      ledger=self.ctx.flows)
        return {
            "SOMA_ISSUER": identity.issuer or edge_jwt.issuer,
            "SOMA_ALLOWED_AUDIENCES": json.dumps(list(identity.audiences or edge_jwt.audiences)),
            "SOMA_VAULT_ADDR": admin.url,
            "SOMA_VAULT_KUBERNETES_ROLE": role,
            "SOMA_VAULT_KUBERNETES_MOUNT": vault_server.KUBERNETES_AUTH_PATH,
            "SOMA_VAULT_SERVICE_ACCOUNT_TOKEN_PATH": f"{VAULT_TOKEN_DIR}/token",
            "SOMA_VAULT_TRANSIT_MOUNT": identity.transit_mount,
            "SOMA_SIGNING_KEY_NAME": identity.signing_key,
            "SOMA_SIGNING_ALGORITHM": identity.signing_algorithm,
        }


def manifests_provider(name: str, directory: str, parent: pulumi.Resource) -> k8s.Provider:
    """A Kubernetes provider that writes each object it is given to ``directory`` instead of a cluster.

    pulumi-kubernetes' ``renderYamlToDirectory`` (beta): create and update write
    ``<directory>/1-manifest/<apiVersion>-<kind>-<namespace>-<name>.yaml`` ('/' and ':' of the apiVersion as '_',
    the kind in lower case), delete removes the file, CRDs would go to ``0-crd/``; nothing is applied to a cluster
    and Pulumi's state owns the files. ``alwaysRender`` rewrites every file on each ``pulumi up``, so a fresh working
    copy gets the whole folder back, not only what changed. No ``kubeconfig``/``context``/``cluster``: the provider
    refuses them in this mode. tools/app_manifests.py writes the same layout from a rendered plan.
    """
    return k8s.Provider(f"{name}-manifests", render_yaml_to_directory=directory, always_render=True,
                        opts=pulumi.ResourceOptions(parent=parent))


def signer_role(namespace: str) -> str:
    """identity's own Vault policy and Kubernetes-auth role, beside (never the same as) the ``<namespace>-identity``
    policy and role Core makes for the External Secrets consumer that delivers identity's database password."""
    return f"{namespace}-identity-signer"


def identity_policy_hcl(mount: str, key: str) -> str:
    """What identity's token may do (apps/identity vault_policy.py, the service policy): sign with its one key and
    read that key's public versions; never rotate, configure, export or sign with another key."""
    return (f"# identity: signs tokens with {mount}/{key} (components/agents/services.py)\n"
            f'path "{mount}/sign/{key}" {{\n  capabilities = ["update"]\n}}\n'
            f'path "{mount}/keys/{key}" {{\n  capabilities = ["read"]\n}}\n')


def endpoint_peer(endpoint) -> Peer:
    """Where a :class:`~components.settings.ServiceEndpoint` is, for its egress flow."""
    if endpoint.cidr:
        return Peer(cidr=endpoint.cidr)
    return Peer(namespace=endpoint.namespace, pods=dict(endpoint.pods))


__all__ = ["AgentServicesDeployment", "SPECS", "identity_policy_hcl", "manifests_provider", "postgres_dsn"]
