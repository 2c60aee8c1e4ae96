"""OpenFGA: who may do what on the platform (issue 12 point 1; docs/architecture/openfga.md).

* The server from its official chart (openfga/helm-charts 0.3.12, vendored), ``governance.openfga.replicas``
  of it, one per node (anti-affinity, required in HA stacks) behind a PodDisruptionBudget (the chart has
  none). Its datastore is the ``openfga`` database on the platform's PostgreSQL (``core.database``); the
  URI, user and the owner role's own generated password reach it from Vault through External Secrets as
  ``openfga-datastore`` (chart ``datastore.existingSecret`` + ``secretKeys``), never as values.
* Migrations: the chart runs ``openfga migrate`` either as a Helm hook Job awaited by a ``k8s-wait-for``
  init container (the provider drops hooks, and the waiter needs an image and API access of its own) or
  as an init container of every server pod (replicas racing each other). Neither is used
  (``datastore.applyMigrations: false``); the kit Job ``openfga-migrate`` runs it with the server's image,
  and the chart waits for it: Pulumi awaits a Job's completion, and the Job is replaced (so re-run) when
  its image changes, before the servers roll.
* The model: ``model.fga`` (tested by ``fga model test`` against ``model.fga.yaml``), shipped as the JSON
  ``fga model transform`` makes of it (``model.json``); the kit Job ``openfga-bootstrap`` writes it to the
  store ``governance.openfga.store`` when it differs and puts the store and model IDs in Vault
  (``<namespace>/openfga/authorization``) for later phases (``bootstrap.py``).
* Flows (NetworkPolicy and, through ``ctx.flows``, the mesh's AuthorizationPolicy): the API only from the
  gateway and the orchestrator (agents namespace) and from the bootstrap Job; metrics from Prometheus;
  out to the database and to the collector (traces).

Chart keys read from charts/openfga at 0.3.12: values.yaml, templates/deployment.yaml (``replicaCount``,
``image.*``, ``serviceAccount.*``, ``podSecurityContext``, ``securityContext``, ``podExtraLabels``,
``datastore.*`` through _helpers.tpl ``openfga.datastore.envConfig``, ``telemetry.*``, ``playground``,
``affinity``, ``topologySpreadConstraints``), templates/job.yaml (renders only with ``applyMigrations``),
templates/rbac.yaml (only with ``serviceAccount.create``), templates/servicemonitor.yaml.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_vault as vault

from components.core import CoreOutputs
from components.core.interfaces import DatabaseAccess, SecretRef
from components.core.secrets import vault_server
from components.core.secrets.vault_access import VAULT_AUDIENCE, data_api_path
from components.core.secrets.ca_bundle import VAULT_CA_BUNDLE, vault_ca_bundle
from components.kit import (
    Egress, Job, JobArgs, KitContext, Peer, ScriptFiles, SecretEnv, SecretFile, ServiceAccountToken, allow_ingress,
    custom_resource, helm_chart, recommended, selector,
)
from components.kit.network import PROMETHEUS_PODS, Flow, FlowRule, flow_policy, tcp
from components.kit.observability import monitor
from components.kit.security import anti_affinity, container_security_context, pod_security_context, resource_requirements
from components.settings import OPENFGA_CLIENTS, OpenFgaSettings

HERE = Path(__file__).parent
RELEASE = "openfga"
"""The release name; it contains the chart's name, so every object is named ``openfga`` (_helpers.tpl openfga.fullname)."""
SERVICE_ACCOUNT = "openfga"
POD_LABELS = {"app.kubernetes.io/name": "openfga", "app.kubernetes.io/instance": RELEASE}
"""The server pods' selector labels (_helpers.tpl ``openfga.selectorLabels``)."""
UID = 65532
"""The image's user (chainguard static base, ``nonroot``)."""
HTTP_PORT = 8080
GRPC_PORT = 8081
METRICS_PORT = 2112
"""values.yaml ``http.addr``, ``grpc.addr``, ``telemetry.metrics.addr``; the Service names them http, grpc, metrics."""
API_PORTS = (HTTP_PORT, GRPC_PORT)
CLIENT_APPS = ("gateway", "orchestrator")
"""The only callers of the API: ``app.kubernetes.io/name`` of their pods in the agents namespace, and the names of
their ServiceAccounts (a kit Workload's account is named after it), which are their mesh identities."""
DATASTORE_KEYS = {"uriKey": "uri", "usernameKey": "username", "passwordKey": "password"}
MIGRATE_JOB = "openfga-migrate"
BOOTSTRAP_JOB = "openfga-bootstrap"
MODEL_DSL = HERE / "model.fga"
MODEL_JSON = HERE / "model.json"
BOOTSTRAP_SCRIPT = HERE / "bootstrap.py"
SCRIPT_DIR = "/scripts"
TOKEN_DIR = "/var/run/secrets/vault"
CA_DIR = "/vault/tls"
IDS_SECRET = "authorization"
IDS_KEYS = ("api-url", "model-id", "store-id", "store-name")
BOOTSTRAP_IMAGE = "k8s-sidecar"
"""A catalog image that has Python 3 on its PATH (kiwigrid/k8s-sidecar: python alpine base, its venv first on
PATH); the script needs the standard library only."""


@dataclass(frozen=True)
class OpenFgaOutputs:
    """What later phases need to ask OpenFGA: where it answers, and where its store and model IDs are.

    ``ids_path`` is the mount-relative Vault KV path holding ``ids_keys``; a later phase delivers them
    to its namespace with ``core.secrets.share(service, namespace, ids_path, ids_keys)``. ``server`` and
    ``ports`` are where the clients' egress must be opened (the agents phase owns that half).
    """

    http_url: str
    grpc_address: str
    store: str
    ids_path: str
    ids_keys: tuple[str, ...]
    server: Peer
    ports: tuple[int, ...]


def otlp_address(endpoint: str) -> str:
    """OpenFGA takes its OTLP gRPC endpoint as ``host:port`` (``OPENFGA_TRACE_OTLP_ENDPOINT``), no scheme."""
    return endpoint.split("://", 1)[-1].rstrip("/")


def datastore_values(database: DatabaseAccess, credentials: SecretRef) -> dict[str, Any]:
    """``datastore``: PostgreSQL from the delivered Secret only; the chart's own migrations off."""
    missing = set(DATASTORE_KEYS.values()) - set(credentials.keys)
    if missing:
        raise ValueError(f"openfga: the Secret {credentials.name} lacks {sorted(missing)}")
    return {"engine": "postgres", "existingSecret": credentials.name, "secretKeys": dict(DATASTORE_KEYS),
            "applyMigrations": False, "waitForMigrations": False}


def datastore_uri(database: DatabaseAccess) -> str:
    """The connection without credentials (OpenFGA adds ``OPENFGA_DATASTORE_USERNAME``/``PASSWORD``). TLS is
    required; CloudNativePG's CA lives in the data namespace, so the server name is not verified (as Grafana)."""
    return f"postgres://{database.address}/{database.name}?sslmode=require"


def chart_values(settings: OpenFgaSettings, ctx: KitContext, database: DatabaseAccess, credentials: SecretRef) -> dict[str, Any]:
    image = ctx.catalog.image("openfga")
    values: dict[str, Any] = {
        "replicaCount": settings.replicas,
        "image": {"repository": image.name, "tag": image.tag_at_digest, "pullPolicy": "IfNotPresent"},
        "serviceAccount": {"create": False, "name": SERVICE_ACCOUNT},
        "podSecurityContext": pod_security_context(UID),
        "securityContext": container_security_context(uid=UID),
        "podExtraLabels": dict(database.client_labels),
        "resources": resource_requirements(settings.resources),
        "datastore": datastore_values(database, credentials),
        "postgresql": {"enabled": False},
        "mysql": {"enabled": False},
        "playground": {"enabled": False},
        "profiler": {"enabled": False},
        "log": {"format": "json", "level": "info"},
        "telemetry": {
            "metrics": {"enabled": True, "enableRPCHistograms": True, "serviceMonitor": {"enabled": False}},
            "trace": {"enabled": settings.trace_sample_ratio > 0, "otlp": {"endpoint": otlp_address(ctx.telemetry.otlp_endpoint)},
                      "sampleRatio": settings.trace_sample_ratio or None},
        },
    }
    if settings.replicas > 1:
        values["affinity"] = anti_affinity(POD_LABELS, ctx.high_availability)
        values["topologySpreadConstraints"] = [{
            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule" if ctx.high_availability else "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(POD_LABELS)}}]
    return values


def client_apps(enabled_services: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The gateway and the orchestrator always, and the other OpenFGA clients the stack enables (the tool service,
    the memory gateway: ``agents.services``), so a stack without them admits no more than before."""
    return CLIENT_APPS + tuple(s for s in OPENFGA_CLIENTS if s not in CLIENT_APPS and s in enabled_services)


def client_peers(agents_namespace: str, clients: tuple[str, ...] = CLIENT_APPS) -> list[Peer]:
    return [Peer(namespace=agents_namespace, pods={"app.kubernetes.io/name": app}) for app in clients]


def flows(namespace: str, agents_namespace: str, database: DatabaseAccess, observability_namespace: str,
          clients: tuple[str, ...] = CLIENT_APPS) -> list[Flow]:
    """Every flow of the server pods, declared once: NetworkPolicies here, AuthorizationPolicies from the ledger."""
    pods = {"matchLabels": dict(POD_LABELS)}
    callers = tuple(p.as_rule() for p in client_peers(agents_namespace, clients))
    bootstrap = Peer(namespace=namespace, pods=selector(BOOTSTRAP_JOB)).as_rule()
    prometheus = Peer(namespace=observability_namespace, pods=dict(PROMETHEUS_PODS)).as_rule()
    collector = Peer(namespace=observability_namespace, pods={"app.kubernetes.io/name": "opentelemetry-collector"}).as_rule()
    db = Peer(namespace=database.namespace, pods=dict(database.pods)).as_rule()
    return [
        Flow("openfga-api-from-clients", "Ingress", pods, (FlowRule((*callers, bootstrap), tcp(*API_PORTS)),),
             "the gateway and the orchestrator ask for authorization decisions; the bootstrap Job writes the model"),
        Flow("openfga-metrics-scrape", "Ingress", pods, (FlowRule((prometheus,), tcp(METRICS_PORT)),),
             "Prometheus scrapes OpenFGA's request and datastore metrics"),
        Flow("openfga-to-database", "Egress", pods, (FlowRule((db,), tcp(database.port)),),
             "OpenFGA keeps its tuples and models in the openfga database on the platform's PostgreSQL"),
        Flow("openfga-telemetry", "Egress", pods, (FlowRule((collector,), tcp(4317)),),
             "OpenFGA sends its traces over OTLP to the platform collector"),
    ]


def mesh_client_lock(namespace: str, agents_namespace: str, trust_domain: str, clients: tuple[str, ...] = CLIENT_APPS) -> dict[str, Any]:
    """``spec`` of a DENY AuthorizationPolicy: from the agents namespace, only the gateway's and the orchestrator's
    identities reach the API ports.

    In an ambient namespace the API traffic arrives over HBONE (15008), so the NetworkPolicy's pod selector on
    8080/8081 never sees it and the flow's ALLOW policy is as wide as the namespace (components/mesh/istio/
    authorization.py); this narrows it to the two ServiceAccounts. Istio evaluates DENY before ALLOW."""
    principals = [f"{trust_domain}/ns/{agents_namespace}/sa/{app}" for app in clients]
    return {"selector": {"matchLabels": dict(POD_LABELS)}, "action": "DENY", "rules": [{
        "from": [{"source": {"namespaces": [agents_namespace], "notPrincipals": principals}}],
        "to": [{"operation": {"ports": [str(p) for p in API_PORTS]}}]}]}


def migrate_job(settings: OpenFgaSettings, namespace: str, database: DatabaseAccess, credentials: SecretRef) -> JobArgs:
    """``openfga migrate`` with the server's image and the server's datastore settings (templates/job.yaml's env)."""
    return JobArgs(
        name=MIGRATE_JOB, namespace=namespace, component="openfga-migration", image="openfga",
        command=("/openfga",), args=("migrate",), resources=settings.migration_resources,
        env={"OPENFGA_DATASTORE_ENGINE": "postgres"},
        secret_env=(SecretEnv("OPENFGA_DATASTORE_URI", credentials.name, DATASTORE_KEYS["uriKey"]),
                    SecretEnv("OPENFGA_DATASTORE_USERNAME", credentials.name, DATASTORE_KEYS["usernameKey"]),
                    SecretEnv("OPENFGA_DATASTORE_PASSWORD", credentials.name, DATASTORE_KEYS["passwordKey"])),
        egress=(Egress(to=Peer(namespace=database.namespace, pods=dict(database.pods)), ports=(database.port,)),),
        pod_labels=dict(database.client_labels), backoff_limit=6, active_deadline_seconds=900,
    )


def bootstrap_job(settings: OpenFgaSettings, namespace: str, vault_url: str, vault_tls: bool, kv_mount: str,
                  secrets_namespace: str) -> JobArgs:
    """The model writer (bootstrap.py) with the model JSON beside it, a Vault-audience token and Vault's CA."""
    env = {
        "FGA_API_URL": f"http://{RELEASE}.{namespace}.svc.cluster.local:{HTTP_PORT}",
        "FGA_STORE_NAME": settings.store,
        "FGA_MODEL_FILE": f"{SCRIPT_DIR}/model.json",
        "VAULT_ADDR": vault_url,
        "VAULT_AUTH_PATH": vault_server.KUBERNETES_AUTH_PATH,
        "VAULT_ROLE": bootstrap_role(namespace),
        "VAULT_JWT_FILE": f"{TOKEN_DIR}/token",
        "VAULT_KV_MOUNT": kv_mount,
        "VAULT_KV_PATH": ids_path(namespace),
    }
    if vault_tls:
        env["VAULT_CACERT"] = f"{CA_DIR}/ca.crt"
    return JobArgs(
        name=BOOTSTRAP_JOB, namespace=namespace, component="openfga-bootstrap", image=BOOTSTRAP_IMAGE,
        command=("python", f"{SCRIPT_DIR}/bootstrap.py"), resources=settings.bootstrap_resources, env=env,
        files=ScriptFiles(SCRIPT_DIR, {"bootstrap.py": BOOTSTRAP_SCRIPT.read_text(), "model.json": MODEL_JSON.read_text()}),
        token=ServiceAccountToken(audience=VAULT_AUDIENCE, path=TOKEN_DIR),
        secret_files=(SecretFile(VAULT_CA_BUNDLE, ("ca.crt",), CA_DIR),) if vault_tls else (),
        egress=(Egress(to=Peer(namespace=namespace, pods=dict(POD_LABELS)), ports=(HTTP_PORT,)),
                Egress(to=Peer(namespace=secrets_namespace, pods=dict(vault_server.POD_LABELS)), ports=(vault_server.PORT,))),
        backoff_limit=6, active_deadline_seconds=900,
    )


def ids_path(namespace: str) -> str:
    """Where the store and model IDs live in Vault's KV mount (the consumer scheme ``<namespace>/<service>/<secret>``)."""
    return f"{namespace}/openfga/{IDS_SECRET}"


def bootstrap_role(namespace: str) -> str:
    return f"{namespace}-{BOOTSTRAP_JOB}"


def bootstrap_policy_hcl(kv_mount: str, namespace: str) -> str:
    """Read, create and update the one KV secret that holds the IDs; nothing else (no list, no delete, no other path)."""
    return (f"# {BOOTSTRAP_JOB}: publishes the OpenFGA store and model IDs (components/governance/openfga)\n"
            f'path "{data_api_path(kv_mount, ids_path(namespace))}" {{\n  capabilities = ["create", "read", "update"]\n}}\n')


def bootstrap_role_settings(namespace: str) -> dict[str, Any]:
    """``pulumi_vault.kubernetes.AuthBackendRole`` arguments: the Job's own ServiceAccount, in its namespace, with the
    ``vault`` audience, a short non-renewable token and the one policy."""
    name = bootstrap_role(namespace)
    return {"role_name": name, "bound_service_account_names": [BOOTSTRAP_JOB], "bound_service_account_namespaces": [namespace],
            "audience": VAULT_AUDIENCE, "token_policies": [name], "token_ttl": 300, "token_max_ttl": 300, "token_type": "service"}


class OpenFga(pulumi.ComponentResource):
    """``somaagenthub:governance:OpenFga``: credentials, migration, server, model bootstrap, flows, scraping."""

    def __init__(self, settings: OpenFgaSettings, ctx: KitContext, core: CoreOutputs, namespace: str, agents_namespace: str,
                 kv_mount: str, trust_domain: str, clients: tuple[str, ...] = CLIENT_APPS, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:governance:OpenFga", "openfga", None, opts)
        if core.database is None or core.secrets is None or core.vault is None:
            raise ValueError("OpenFGA needs Core's database and Vault (core.vault.configure true)")
        child = pulumi.ResourceOptions(parent=self)
        database = core.database("openfga")
        if database.namespace == namespace:
            raise ValueError("openfga: the database runs in the data namespace, not in governance")
        # the owner role's own generated password, granted to OpenFGA too: both ends hold the same value
        self.credentials = core.secrets.grant(
            "openfga", namespace, SERVICE_ACCOUNT, "datastore",
            {"uri": datastore_uri(database), "username": database.user, "password": core.secrets.password(database.password)},
            create_service_account=True)
        self.network_policies = [flow_policy(namespace, flow, child, ctx.flows)
                                 for flow in flows(namespace, agents_namespace, database, core.observability_namespace, clients)]
        self.migration = Job(migrate_job(settings, namespace, database, self.credentials), ctx, opts=child)
        self.chart = helm_chart(RELEASE, "openfga", namespace, chart_values(settings, ctx, database, self.credentials), ctx,
                                pulumi.ResourceOptions(parent=self, depends_on=[self.migration, *self.network_policies]))
        # after the chart: Istio's CRDs (the Mesh phase's, which the phase's outputs do not expose) are long installed by then
        self.client_lock = (custom_resource("security.istio.io/v1", "AuthorizationPolicy", "openfga-api-callers-only", namespace,
                                            mesh_client_lock(namespace, agents_namespace, trust_domain, clients),
                                            pulumi.ResourceOptions(parent=self, depends_on=[self.chart]))
                            if namespace in ctx.mesh.members else None)
        self.disruption_budget = None
        if settings.replicas > 1:
            self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
                f"{namespace}-{RELEASE}", metadata={"name": RELEASE, "namespace": namespace, "labels": recommended(RELEASE, "authorization")},
                spec={"maxUnavailable": 1, "selector": {"matchLabels": dict(POD_LABELS)}}, opts=child)
        # the Service the chart makes carries the selector labels and names its metrics port "metrics"
        self.service_monitor = monitor("ServiceMonitor", RELEASE, namespace, dict(POD_LABELS),
                                       [{"port": "metrics", "path": "/metrics", "interval": "30s", "scheme": "http"}], ctx, child)
        self.bootstrap = self._bootstrap(settings, ctx, core, namespace, kv_mount, child)
        self.outputs = OpenFgaOutputs(
            http_url=f"http://{RELEASE}.{namespace}.svc.cluster.local:{HTTP_PORT}",
            grpc_address=f"{RELEASE}.{namespace}.svc.cluster.local:{GRPC_PORT}",
            store=settings.store, ids_path=ids_path(namespace), ids_keys=IDS_KEYS,
            server=Peer(namespace=namespace, pods=dict(POD_LABELS)), ports=API_PORTS)
        self.register_outputs({"httpUrl": self.outputs.http_url, "store": settings.store, "idsPath": self.outputs.ids_path})

    def _bootstrap(self, settings: OpenFgaSettings, ctx: KitContext, core: CoreOutputs, namespace: str, kv_mount: str,
                   child: pulumi.ResourceOptions) -> Job:
        """The Vault policy and role of the bootstrap Job, Vault's CA in this namespace, Vault's ingress from the
        Job, and the Job itself, after the servers are up."""
        admin = core.vault
        on_vault = pulumi.ResourceOptions(parent=self, provider=admin.provider)
        role = bootstrap_role_settings(namespace)
        policy = vault.Policy(f"{namespace}-{BOOTSTRAP_JOB}", name=role["role_name"], policy=bootstrap_policy_hcl(kv_mount, namespace),
                              opts=on_vault)
        login = vault.kubernetes.AuthBackendRole(f"{namespace}-{BOOTSTRAP_JOB}", backend=admin.kubernetes_auth_path, **role,
                                                 opts=pulumi.ResourceOptions.merge(on_vault, pulumi.ResourceOptions(depends_on=[policy])))
        waits: list[pulumi.Resource] = [self.chart, login]
        if admin.tls:
            after_cert_manager = pulumi.ResourceOptions(parent=self, depends_on=[core.cert_manager] if core.cert_manager else [])
            waits.append(vault_ca_bundle(namespace, admin.ca_issuer, after_cert_manager))
        waits.append(allow_ingress(f"vault-from-{BOOTSTRAP_JOB}", core.secrets_namespace, vault_server.POD_LABELS,
                                   [Peer(namespace=namespace, pods=selector(BOOTSTRAP_JOB))], [vault_server.PORT], child, ledger=ctx.flows))
        args = bootstrap_job(settings, namespace, admin.url, admin.tls, kv_mount, core.secrets_namespace)
        return Job(args, ctx, opts=pulumi.ResourceOptions(parent=self, depends_on=waits))


__all__ = ["OpenFga", "OpenFgaOutputs", "bootstrap_job", "chart_values", "flows", "migrate_job"]
