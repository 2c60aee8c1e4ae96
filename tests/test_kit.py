"""The kit: what a service author gets by default, and what an opt-out costs."""
from __future__ import annotations

import pytest
import yaml

from components import catalog, settings
from components.core import telemetry_for
from components.kit import KitContext, Peer, Workload, WorkloadArgs, helm_chart
from components.kit.labels import waiver_annotations
from components.settings import Resources
from tests.helpers import by_type, objects
from tools import mock_runtime
from tools.render import ROOT, build_plan, stack_config

RESOURCES = Resources(cpu_request="100m", memory_request="128Mi", cpu_limit="500m", memory_limit="256Mi")


def context(stack: str) -> KitContext:
    s = settings.parse(stack_config(stack), stack)
    return KitContext.from_settings(s, catalog.load(), telemetry_for(s.core))


def workload_plan(stack: str = "dev", **overrides) -> dict:
    args = dict(name="orchestrator", namespace="soma-agents", component="agents", image="vault", port=8080,
                resources=RESOURCES, callers=(Peer(namespace="soma-edge"),))
    args.update(overrides)
    ctx = context(stack)
    recording = mock_runtime.run(lambda: Workload(WorkloadArgs(**args), ctx), stack, {})
    return build_plan(stack, recording, {})


def container_of(plan: dict) -> tuple[dict, dict]:
    deployment = next(o for o in objects(plan) if o["kind"] in ("Deployment", "StatefulSet"))
    pod = deployment["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def test_the_program_renders_after_an_asyncio_run_left_the_thread_without_a_loop():
    """The apps' tests run async code with asyncio.run(), which leaves the main thread without an event loop;
    a render in the same process must still work (it did not: "There is no current event loop")."""
    import asyncio

    async def nothing() -> None:
        return None

    asyncio.run(nothing())
    pod, _ = container_of(workload_plan())
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_a_workload_is_hardened_without_asking():
    pod, container = container_of(workload_plan())
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] >= 10000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["privileged"] is False
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
    assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container)


def test_the_image_comes_from_the_catalog_for_the_stack_registry():
    dev_image = container_of(workload_plan("dev"))[1]["image"]
    prod_image = container_of(workload_plan("prod"))[1]["image"]
    pinned = catalog.load().images["vault"]
    assert dev_image == f"docker.io/{pinned.repository}:{pinned.tag}@{pinned.digest}"
    assert prod_image == f"registry.soma.example.com/mirror/{pinned.repository}:{pinned.tag}@{pinned.digest}"


def test_a_workload_gets_its_own_service_account_without_a_token():
    plan = workload_plan()
    (account,) = objects(plan, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert container_of(plan)[0]["serviceAccountName"] == account["metadata"]["name"]


def test_a_workload_is_observable_by_default():
    plan = workload_plan()
    _, container = container_of(plan)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OTEL_SERVICE_NAME"] == "orchestrator"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://opentelemetry-collector.soma-observability.svc.cluster.local:4317"
    assert "deployment.environment.name=dev" in env["OTEL_RESOURCE_ATTRIBUTES"]
    assert env["LOG_FORMAT"] == "json"
    assert "metrics" in {p["name"] for p in container["ports"]}
    (monitor,) = objects(plan, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_a_workload_that_pushes_its_metrics_over_otlp_declares_nothing_to_scrape():
    """metrics="otlp" (the soma_service apps): no metrics port on the pod or the Service, no ServiceMonitor, no scrape
    flow, so no monitor points at a port nothing serves; the OTLP flow to the collector stays, the environment says
    how the metrics leave, and each pod is its own ``service.instance.id`` (Prometheus' ``instance``)."""
    plan = workload_plan(metrics="otlp")
    _, container = container_of(plan)
    assert [p["name"] for p in container["ports"]] == ["http"]
    (service,) = objects(plan, "Service")
    assert [p["name"] for p in service["spec"]["ports"]] == ["http"]
    assert objects(plan, "ServiceMonitor") == [] and objects(plan, "PodMonitor") == []
    assert {p["metadata"]["name"] for p in objects(plan, "NetworkPolicy")} == {"orchestrator-callers", "orchestrator-telemetry"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OTEL_METRICS_EXPORTER"] == "otlp"
    assert "service.instance.id=$(K8S_POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"].split(",")
    # the scraped default is unchanged
    assert {e["name"]: e.get("value") for e in container_of(workload_plan())[1]["env"]}["OTEL_METRICS_EXPORTER"] == "prometheus"


def test_metrics_over_otlp_refuse_a_metrics_port_on_the_service_port_and_unknown_modes():
    with pytest.raises(ValueError, match="not served on the service port"):
        workload_plan(metrics="otlp", metrics_on_service_port=True)
    with pytest.raises(ValueError, match="'scrape' or 'otlp'"):
        workload_plan(metrics="pull")
    # the service port may be 9464 when nothing listens on a metrics port
    assert [p["containerPort"] for p in container_of(workload_plan(metrics="otlp", port=9464))[1]["ports"]] == [9464]


def test_recommended_labels_everywhere():
    for obj in objects(workload_plan()):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "somaagenthub", obj["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "pulumi", obj["kind"]


def test_single_replica_has_no_disruption_budget_and_many_replicas_do():
    assert objects(workload_plan(), "PodDisruptionBudget") == []
    plan = workload_plan("prod", replicas=3)
    (pdb,) = objects(plan, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    pod, _ = container_of(plan)
    assert pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"


def test_dev_spreads_softly():
    pod, _ = container_of(workload_plan("dev", replicas=2))
    assert "preferredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["podAntiAffinity"]


def test_network_policies_open_only_the_named_flows():
    names = {p["metadata"]["name"] for p in objects(workload_plan(), "NetworkPolicy")}
    assert names == {"orchestrator-callers", "orchestrator-metrics-scrape", "orchestrator-telemetry"}


def test_an_opt_out_needs_a_reason_and_lands_in_an_annotation():
    with pytest.raises(ValueError, match="needs a reason"):
        workload_plan(opt_out={"read-only-root-filesystem": " "})
    plan = workload_plan(opt_out={"read-only-root-filesystem": "writes a cache under /var/lib/x"})
    deployment = next(o for o in objects(plan) if o["kind"] == "Deployment")
    assert deployment["metadata"]["annotations"] == {"waivers.somaagenthub.io/read-only-root-filesystem": "writes a cache under /var/lib/x"}
    assert container_of(plan)[1]["securityContext"]["readOnlyRootFilesystem"] is False


def test_the_kit_refuses_to_relax_what_it_must_not():
    with pytest.raises(ValueError, match="cannot relax"):
        workload_plan(opt_out={"non-root": "the image wants root"})
    with pytest.raises(ValueError, match="never runs a pod as UID 0"):
        workload_plan(run_as_user=0)


def test_a_statefulset_needs_storage_and_gets_a_claim_of_that_size():
    with pytest.raises(ValueError, match="needs storage"):
        WorkloadArgs(name="x", namespace="n", component="c", image="vault", port=1, resources=RESOURCES, kind="StatefulSet")
    plan = workload_plan(kind="StatefulSet", storage="3Gi")
    sts = objects(plan, "StatefulSet")[0]
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "3Gi" and claim["storageClassName"] == "standard"


def test_a_secret_env_comes_from_a_secret_reference_only():
    from components.kit import SecretEnv

    plan = workload_plan(secret_env=(SecretEnv(env="DB_PASSWORD", secret="orchestrator-db", key="password"),))
    env = {e["name"]: e for e in container_of(plan)[1]["env"]}
    assert env["DB_PASSWORD"] == {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "orchestrator-db", "key": "password"}}}


def test_charts_come_pinned_from_the_catalog():
    ctx = context("dev")
    pinned = catalog.load().charts["vault"]
    import pulumi

    recording = mock_runtime.run(
        lambda: helm_chart("vault", "vault", "soma-secrets", {"injector": {"enabled": False}}, ctx, pulumi.ResourceOptions()),
        "dev", {},
    )
    (chart,) = by_type(build_plan("dev", recording, {}), "kubernetes:helm.sh/v4:Chart")
    # The provider deploys the vendored folder (a local path: no repository is asked for anything),
    # and that folder holds the release the catalog pins.
    assert chart["inputs"]["chart"] == "./charts/vault" == f"./{pinned.path}"
    assert "repositoryOpts" not in chart["inputs"]
    assert chart["inputs"]["version"] == pinned.version
    vendored = yaml.safe_load((ROOT / chart["inputs"]["chart"] / "Chart.yaml").read_text())
    assert (vendored["name"], vendored["version"]) == (pinned.chart, pinned.version)
    assert chart["inputs"]["namespace"] == "soma-secrets"
    assert chart["inputs"]["values"] == {"injector": {"enabled": False}}
    assert chart["remote"] is True


def test_waiver_annotations_are_sorted_and_prefixed():
    assert waiver_annotations({"b": "why b", "a": "why a"}) == {
        "waivers.somaagenthub.io/a": "why a",
        "waivers.somaagenthub.io/b": "why b",
    }


def cron_job_plan(stack: str = "prod") -> dict:
    from components.kit import CronJob, CronJobArgs, Egress, JobArgs, SecretEnv, SecretFile, ServiceAccountToken, Step

    small = Resources(cpu_request="10m", memory_request="32Mi", cpu_limit="100m", memory_limit="64Mi")
    job = JobArgs(
        name="exporter", namespace="soma-secrets", component="backup", image="minio", command=("/bin/sh", "/scripts/upload.sh"),
        resources=RESOURCES, secret_env=(SecretEnv("S3_ACCESS_KEY_ID", "exporter-keys", "access-key-id"),),
        steps=(Step("take", "vault", ("/bin/sh", "/scripts/take.sh"), small,
                    secret_files=(SecretFile("vault-tls", ("ca.crt",), "/tls"),),
                    token=ServiceAccountToken(audience="vault", path="/var/run/secrets/vault")),),
        shared_dirs={"/work": "1Gi"}, pod_labels={"somaagenthub.io/minio-client": "true"},
        egress=(Egress(to=Peer(namespace="soma-data"), ports=(9000,)),),
    )
    ctx = context(stack)
    namespace = settings.parse(stack_config(stack), stack).core.namespaces.secrets

    def program():
        from components.kit import PlatformNamespace

        PlatformNamespace(namespace, ctx)
        CronJob(CronJobArgs(job=job, schedule="17 * * * *"), ctx)

    return build_plan(stack, mock_runtime.run(program, stack, {}), {})


def test_a_cron_job_runs_its_steps_hardened_one_run_at_a_time():
    plan = cron_job_plan()
    (cron,) = objects(plan, "CronJob")
    assert cron["spec"]["schedule"] == "17 * * * *" and cron["spec"]["timeZone"] == "Etc/UTC"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    template = cron["spec"]["jobTemplate"]["spec"]["template"]
    pod = template["spec"]
    assert template["metadata"]["labels"]["somaagenthub.io/minio-client"] == "true"
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "exporter"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["restartPolicy"] == "Never"
    (step,), (main,) = pod["initContainers"], pod["containers"]
    assert [step["name"], main["name"]] == ["take", "exporter"]
    for c in (step, main):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert set(c["resources"]) == {"requests", "limits"}
        assert {"mountPath": "/work", "name": "shared-0"} in c["volumeMounts"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = {c["name"]: {m["name"] for m in c["volumeMounts"]} for c in (step, main)}
    token = next(name for name, v in volumes.items() if "projected" in v)
    assert volumes[token]["projected"]["sources"] == [{"serviceAccountToken": {"audience": "vault", "expirationSeconds": 600, "path": "token"}}]
    secret = next(name for name, v in volumes.items() if "secret" in v)
    assert volumes[secret]["secret"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}], "only the CA, never the Secret's private key"
    assert {token, secret} <= mounted["take"] and not {token, secret} & mounted["exporter"], "each input reaches its own container only"
    assert step["env"] == [] and main["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "exporter-keys"
    (policy,) = [o for o in objects(plan, "NetworkPolicy") if o["metadata"]["name"].startswith("exporter")]
    assert policy["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 9000}]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "exporter", "app.kubernetes.io/part-of": "somaagenthub"}


def test_a_kit_cron_job_in_a_platform_namespace_passes_the_prod_gate():
    import copy

    from policies.config import load_config_file, stack_config_path
    from tools.gate import run_gate

    plan = cron_job_plan("prod")
    config = load_config_file(stack_config_path("prod"))
    # this one-job plan deploys no signature verifier; signed-images is checked over whole plans (tests/mesh)
    config["signed-images"] = {**config["signed-images"], "verifyBy": "none"}
    report = run_gate(plan, config)
    assert report.passed, report.render()
    # and the gate does look inside the schedule: a writable root in the step is refused
    mutated = copy.deepcopy(plan)
    cron = next(r for r in mutated["resources"] if r["type"] == "kubernetes:batch/v1:CronJob")
    cron["inputs"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    assert {line.rule for line in run_gate(mutated, config).blocking} == {"read-only-root-filesystem"}


@pytest.mark.parametrize(("build", "message"), [
    (lambda k: k.CronJobArgs(job=k.JobArgs(name="x", namespace="n", component="c", image="minio", command=("true",), resources=RESOURCES),
                             schedule="0 0 2 * * *"), "five fields"),
    (lambda k: k.ServiceAccountToken(audience="vault", path="/t", expiration_seconds=60), "minimum of 600s"),
    (lambda k: k.ServiceAccountToken(audience="", path="/t"), "audience"),
    (lambda k: k.SecretFile("vault-tls", (), "/tls"), "never the whole Secret"),
    (lambda k: k.JobArgs(name="x", namespace="n", component="c", image="minio", command=("true",), resources=RESOURCES,
                         steps=(k.Step("x", "vault", ("true",), RESOURCES),)), "container names must differ"),
    (lambda k: k.JobArgs(name="x", namespace="n", component="c", image="minio", command=("true",), resources=RESOURCES,
                         pod_labels={"app.kubernetes.io/name": "y"}), "selector labels"),
])
def test_the_kit_refuses_an_unsafe_or_ambiguous_job(build, message):
    import components.kit as kit

    with pytest.raises(ValueError, match=message):
        build(kit)


def test_a_kit_cron_job_validates_against_the_kubernetes_schema():
    from tests.verification import validate

    plan = cron_job_plan("prod")
    version = settings.parse(stack_config("prod"), "prod").kubernetes_version
    for kind in ("CronJob", "ServiceAccount", "NetworkPolicy"):
        for obj in objects(plan, kind):
            assert validate(obj, version) == [], (kind, obj["metadata"]["name"])


@pytest.mark.parametrize("schedule", ["0 0 2 * * *", "daily", ""])
def test_a_cron_job_needs_a_five_field_schedule(schedule):
    from components.kit import CronJobArgs, JobArgs

    job = JobArgs(name="x", namespace="n", component="c", image="minio", command=("true",), resources=RESOURCES)
    with pytest.raises(ValueError, match="needs five fields"):
        CronJobArgs(job=job, schedule=schedule)


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet"])
def test_a_workload_can_put_its_application_objects_on_another_provider(kind):
    """``applications=``: the pods' controller, its Services and the disruption budget (what an Argo CD application
    holds) go to that provider, e.g. one that renders YAML for the applications repository; the ServiceAccount, the
    NetworkPolicies and the monitor stay with the cluster's default provider (the platform owns them)."""
    import pulumi_kubernetes as k8s

    from components.governance.argocd.projects import APPLICATION_KINDS

    ctx = context("prod")
    extra = {"storage": "1Gi"} if kind == "StatefulSet" else {}
    args = WorkloadArgs(name="orchestrator", namespace="soma-agents", component="agents", image="vault", port=8080,
                        resources=RESOURCES, replicas=2, kind=kind, callers=(Peer(namespace="soma-edge"),), **extra)

    def program():
        files = k8s.Provider("orchestrator-manifests", render_yaml_to_directory="apps/orchestrator/prod")
        Workload(args, ctx, applications=files)

    plan = build_plan("prod", mock_runtime.run(program, "prod", {}), {})
    (provider,) = by_type(plan, "pulumi:providers:kubernetes")
    on = {(r["inputs"]["kind"], r["inputs"]["metadata"]["name"]): r["options"].get("provider")
          for r in plan["resources"] if r["type"].startswith("kubernetes:")}
    to_files = {k for k, p in on.items() if p == provider["urn"]}
    assert to_files == {(kind, "orchestrator"), ("Service", "orchestrator"), ("PodDisruptionBudget", "orchestrator")} | (
        {("Service", "orchestrator-headless")} if kind == "StatefulSet" else set())
    assert {k for k, _ in to_files} <= {k for _, k in APPLICATION_KINDS} | {"StatefulSet"}
    on_cluster = {k for k, p in on.items() if p is None}
    assert {("ServiceAccount", "orchestrator"), ("NetworkPolicy", "orchestrator-callers"), ("ServiceMonitor", "orchestrator")} <= on_cluster
    assert set(on) == to_files | on_cluster
    # without the option nothing changes: everything on the cluster's provider
    assert all(r["options"].get("provider") is None for r in workload_plan("prod", replicas=2)["resources"])
