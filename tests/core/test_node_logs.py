"""Every log collected: the node log agent, read from the rendered plans of both stacks.

What is shown here, offline:

* the agent is a second release of the vendored OpenTelemetry Collector chart, a DaemonSet on every
  node, in its own namespace, the one namespace whose Pod Security is privileged;
* its only host access is ``/var/log/pods``, mounted read-only; no other workload of either plan has
  any host access at all (hostPath, hostNetwork, hostPID, hostIPC, hostPort), and the prod gate
  blocks any other host access, on the agent too, because its waiver names that one volume;
* it runs as a non-root UID whose supplementary group 0 reads files laid out as containerd writes
  them (shown with the kernel: the test runs a reader with exactly the pod's IDs);
* it reads every container's file but its own, sends logs alone, to Loki, with the labels the
  dashboards query, and talks to Loki, the API server and Prometheus only;
* it may read pods, namespaces and replicasets, nothing else.

What is not shown: the agent running on a node, Loki storing its lines (no cluster). The runbook,
docs/runbooks/observability.md "Node logs", says how to check both.
"""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path, PurePosixPath

import pytest
import yaml

from components import catalog as platform_catalog
from components import settings as platform_settings
from components.core.observability import node_logs
from tests.helpers import objects, pod_specs
from tools.gate import run_gate
from tools.render import ROOT, kubernetes_objects, stack_config

STACKS = ("dev", "prod")
CHART = "kubernetes:helm.sh/v4:Chart"
HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def loaded(stack: str) -> platform_settings.PlatformSettings:
    return platform_settings.parse(stack_config(stack), stack)


def node_logs_namespace(stack: str) -> str:
    return loaded(stack).core.namespaces.node_logs.name


def chart(plan: dict, name: str) -> dict:
    (found,) = [r for r in plan["resources"] if r["type"] == CHART and r["name"] == name]
    return found


def children(plan: dict, chart_name: str, kind: str) -> list[dict]:
    urn = chart(plan, chart_name)["urn"]
    return [r["inputs"] for r in plan["resources"] if r["parent"] == urn and r["inputs"].get("kind") == kind]


def agent(plan: dict) -> dict:
    (daemonset,) = children(plan, node_logs.RELEASE, "DaemonSet")
    return daemonset


def relay(plan: dict, chart_name: str) -> dict:
    """The collector configuration a chart release renders (its ConfigMap's ``relay`` key)."""
    (config_map,) = children(plan, chart_name, "ConfigMap")
    return yaml.safe_load(config_map["data"]["relay"])


# --- where it runs --------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_is_a_daemonset_of_the_vendored_collector_chart_in_its_own_namespace(plans, stack):
    plan = plans[stack]
    release = chart(plan, node_logs.RELEASE)
    pinned = platform_catalog.load().chart("opentelemetry-collector")
    assert (release["inputs"]["chart"], release["inputs"]["version"]) == (f"./{pinned.path}", pinned.version)
    assert release["inputs"]["namespace"] == node_logs_namespace(stack)
    assert release["parent"].endswith("somaagenthub:core:NodeLogs::node-logs")
    daemonset = agent(plan)
    assert daemonset["metadata"]["namespace"] == node_logs_namespace(stack)
    workloads = [o for o, _ in pod_specs(plan) if o["metadata"].get("namespace") == node_logs_namespace(stack)]
    assert [(o["kind"], o["metadata"]["name"]) for o in workloads] == [("DaemonSet", node_logs.DAEMONSET)]
    template = daemonset["spec"]["template"]
    assert node_logs.POD_LABELS.items() <= template["metadata"]["labels"].items()
    # every node: a taint that keeps ordinary pods off a node does not keep the agent off it
    assert {"operator": "Exists", "effect": "NoSchedule"} in template["spec"]["tolerations"]
    (container,) = template["spec"]["containers"]
    image = platform_catalog.load().for_registry(loaded(stack).registry).image("opentelemetry-collector-k8s")
    assert container["image"] == f"{image.name}@{image.digest}", "the gateway's image, pulled by digest from the stack's registry"
    limits = container["resources"]
    wanted = loaded(stack).core.observability.node_logs.resources
    assert limits == {"requests": {"cpu": wanted.cpu_request, "memory": wanted.memory_request},
                      "limits": {"cpu": wanted.cpu_limit, "memory": wanted.memory_limit}}


@pytest.mark.parametrize("stack", STACKS)
def test_the_node_logs_namespace_alone_is_privileged_and_says_why(plans, stack):
    namespaces = {o["metadata"]["name"]: o["metadata"] for o in objects(plans[stack], "Namespace")}
    enforced = {name: meta["labels"]["pod-security.kubernetes.io/enforce"] for name, meta in namespaces.items()}
    # besides the mesh's node agents' namespace (istio-cni and ztunnel: tests/mesh/test_istio.py)
    assert {name for name, level in enforced.items() if level != "restricted"} == {node_logs_namespace(stack), MESH_NODE_AGENTS}
    meta = namespaces[node_logs_namespace(stack)]
    assert meta["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert meta["labels"]["pod-security.kubernetes.io/audit"] == meta["labels"]["pod-security.kubernetes.io/warn"] == "restricted"
    assert "hostPath" in meta["annotations"]["waivers.somaagenthub.io/namespace-pod-security"]
    (quota,) = [q for q in objects(plans[stack], "ResourceQuota") if q["metadata"]["namespace"] == node_logs_namespace(stack)]
    assert quota["spec"]["hard"]["persistentvolumeclaims"] == "0"


# --- host access ----------------------------------------------------------------------------------

def host_access(value, where: str = ""):
    """(path, what) for every host field anywhere in an object: host namespaces set true, any
    hostPath, any non-zero hostPort. A deep walk, so custom resources' pod templates count too."""
    if isinstance(value, dict):
        for key, inner in value.items():
            here = f"{where}.{key}" if where else key
            if key in HOST_NAMESPACES and inner is True:
                yield here, key
            elif key == "hostPath" and inner is not None:
                yield here, f"hostPath {inner.get('path') if isinstance(inner, dict) else inner}"
            elif key == "hostPort" and inner:
                yield here, f"hostPort {inner}"
            else:
                yield from host_access(inner, here)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from host_access(inner, f"{where}[{index}]")


MESH_NODE_AGENTS = "soma-mesh-node"
"""The mesh's node agents (istio-cni, ztunnel): their host access is listed and checked in tests/mesh/test_istio.py."""


def plan_host_access(plan: dict) -> set[tuple[str, str, str]]:
    """Every host field of every object of the plan but the CRDs (their schemas describe the fields) and
    the mesh's node agents (checked, path by path, in tests/mesh/test_istio.py)."""
    found = set()
    for r in kubernetes_objects(plan):
        obj = r["inputs"]
        if obj["kind"] == "CustomResourceDefinition" or obj["metadata"].get("namespace") == MESH_NODE_AGENTS:
            continue
        identity = f"{obj['kind']}/{obj['metadata'].get('namespace', '_cluster')}/{obj['metadata']['name']}"
        found |= {(identity, path, what) for path, what in host_access(obj)}
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_no_workload_but_the_agent_has_any_host_access_and_the_agent_only_var_log_pods(plans, stack):
    volumes = agent(plans[stack])["spec"]["template"]["spec"]["volumes"]
    index = next(i for i, v in enumerate(volumes) if "hostPath" in v)
    assert plan_host_access(plans[stack]) == {
        (f"DaemonSet/{node_logs_namespace(stack)}/{node_logs.DAEMONSET}", f"spec.template.spec.volumes[{index}].hostPath",
         "hostPath /var/log/pods"),
    }


def test_the_host_access_scan_sees_custom_resources_and_every_host_field(plans):
    plan = copy.deepcopy(plans["prod"])
    for r in kubernetes_objects(plan):
        obj = r["inputs"]
        if obj["kind"] == "Prometheus":
            obj["spec"]["hostNetwork"] = True
        if obj["kind"] == "StatefulSet" and obj["metadata"]["name"] == "vault":
            obj["spec"]["template"]["spec"]["hostPID"] = True
            obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPort"] = 8200
        if obj["kind"] == "DaemonSet":
            obj["spec"]["template"]["spec"]["hostIPC"] = True
    found = {what for _, _, what in plan_host_access(plan)}
    assert found == {"hostNetwork", "hostPID", "hostPort 8200", "hostIPC", "hostPath /var/log/pods"}


@pytest.mark.parametrize("stack", STACKS)
def test_var_log_pods_is_mounted_read_only_as_an_existing_directory(plans, stack):
    spec = agent(plans[stack])["spec"]["template"]["spec"]
    (host,) = [v for v in spec["volumes"] if "hostPath" in v]
    assert host["hostPath"] == {"path": "/var/log/pods", "type": "Directory"}
    mounts = [m for c in spec["containers"] + spec.get("initContainers", []) for m in c.get("volumeMounts", []) if m["name"] == host["name"]]
    assert mounts and all(m["readOnly"] is True and m["mountPath"] == "/var/log/pods" for m in mounts)
    assert not any("docker" in json.dumps(v) for v in spec["volumes"]), "the preset's /var/lib/docker/containers is not mounted"


def prod_report_with(plans, edit) -> list:
    plan = copy.deepcopy(plans["prod"])
    for r in kubernetes_objects(plan):
        if r["inputs"]["kind"] == "DaemonSet" and r["inputs"]["metadata"]["name"] == node_logs.DAEMONSET:
            edit(r["inputs"]["spec"]["template"]["spec"])
    config = json.loads((ROOT / "policies" / "config" / "prod.json").read_text())
    return run_gate(plan, config).lines


def test_the_prod_waiver_excuses_the_log_volume_and_nothing_else(plans):
    untouched = [line for line in prod_report_with(plans, lambda spec: None) if line.rule == "no-host-access" and MESH_NODE_AGENTS not in line.urn]
    assert [(line.level, line.message) for line in untouched] == [("waived", "volume 'varlogpods' must not use hostPath")]

    def more_host(spec):
        spec["hostNetwork"] = True
        spec["volumes"].append({"name": "containers", "hostPath": {"path": "/var/lib/docker/containers"}})

    blocking = {line.message for line in prod_report_with(plans, more_host)
                if line.rule == "no-host-access" and line.level == "mandatory" and MESH_NODE_AGENTS not in line.urn}
    assert blocking == {"hostNetwork must not be true", "volume 'containers' must not use hostPath"}


# --- who it runs as -------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_runs_as_non_root_with_no_capability_and_a_read_only_root(plans, stack):
    spec = agent(plans[stack])["spec"]["template"]["spec"]
    pod = spec["securityContext"]
    (container,) = spec["containers"]
    own = container["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == own["runAsUser"] == node_logs.AGENT_UID != 0
    assert node_logs.LOG_FILE_GROUP in pod["supplementalGroups"]
    assert own["capabilities"] == {"drop": ["ALL"]}, "no capability added back (no DAC_READ_SEARCH either)"
    assert own["allowPrivilegeEscalation"] is False and own["privileged"] is False
    assert own["readOnlyRootFilesystem"] is True
    assert own["seccompProfile"] == {"type": "RuntimeDefault"}


def runtime_log_tree(root: Path) -> Path:
    """A pod log file laid out as the kubelet and containerd make it: directories 0755, the file 0640
    owned by root:root (containerd internal/cri/server/helpers_linux.go, ``openLogFile``)."""
    log = root / "var" / "log" / "pods" / "soma-secrets_vault-0_0b1c" / "vault" / "0.log"
    log.parent.mkdir(parents=True)
    folder = log.parent
    while folder != root.parent:
        folder.chmod(0o755)
        folder = folder.parent
    log.write_text('2026-11-29T00:00:00.000000000Z stdout F {"type":"request"}\n')
    os.chown(log, 0, 0)
    log.chmod(0o640)
    return log


def read_as(path: Path, uid: int, gid: int, groups: list[int]) -> subprocess.CompletedProcess:
    return subprocess.run(["cat", str(path)], user=uid, group=gid, extra_groups=groups, capture_output=True, text=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing to the agent's UID and groups needs root; run the suite as root to see it")
@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_ids_read_a_runtime_log_file_and_would_not_without_group_0(plans, stack):
    pod = agent(plans[stack])["spec"]["template"]["spec"]["securityContext"]
    groups = sorted({*pod["supplementalGroups"], pod["fsGroup"], pod["runAsGroup"]})
    # pytest's own temporary folders are 0700: the tree hangs off /tmp so that only its own modes count
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        log = runtime_log_tree(Path(folder))
        as_agent = read_as(log, pod["runAsUser"], pod["runAsGroup"], groups)
        without_root_group = read_as(log, pod["runAsUser"], pod["runAsGroup"], [g for g in groups if g != 0])
    assert as_agent.returncode == 0 and '"type":"request"' in as_agent.stdout, as_agent.stderr
    assert without_root_group.returncode != 0 and "Permission denied" in without_root_group.stderr


# --- what it reads and where it sends it ----------------------------------------------------------

def log_path(namespace: str, pod: str, container: str) -> str:
    return f"/var/log/pods/{namespace}_{pod}_5b7e0f0c-0000-4000-8000-000000000000/{container}/0.log"


def collected(receiver: dict, path: str) -> bool:
    """Whether the file_log receiver reads ``path``: an include glob matches and no exclude glob does
    (doublestar globs, where ``*`` stays within one path segment, as PurePosixPath.match does)."""
    def matches(globs):
        return any(PurePosixPath(path).match(glob) for glob in globs)
    return matches(receiver["include"]) and not matches(receiver.get("exclude", []))


@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_reads_every_container_file_but_its_own(plans, stack):
    plan = plans[stack]
    receiver = relay(plan, node_logs.RELEASE)["receivers"][node_logs.RECEIVER]
    core = loaded(stack).core.namespaces
    (vault,) = children(plan, "vault", "StatefulSet")
    vault_container = vault["spec"]["template"]["spec"]["containers"][0]["name"]
    (gateway,) = children(plan, "opentelemetry-collector", "Deployment")
    agent_pod = f"{node_logs.DAEMONSET}-x7k2p"
    assert collected(receiver, log_path(core.secrets.name, f"{vault['metadata']['name']}-0", vault_container))
    assert collected(receiver, log_path(core.observability.name, f"{gateway['metadata']['name']}-5d9c-abcde", "opentelemetry-collector"))
    assert collected(receiver, log_path("kube-system", "coredns-7db6d8ff4d-2xk9q", "coredns"))
    assert not collected(receiver, log_path(core.node_logs.name, agent_pod, node_logs.CONTAINER)), "its own lines would loop"
    assert not collected(receiver, "/var/log/containers/vault-0_soma-secrets_vault-0123.log"), "only the kubelet's pod tree"
    (container,) = agent(plan)["spec"]["template"]["spec"]["containers"]
    assert container["name"] == node_logs.CONTAINER
    parser = receiver["operators"][0]
    assert parser["type"] == "container" and parser.get("add_metadata_from_filepath", True) is True
    assert receiver["include_file_path"] is True, "the container parser reads namespace, pod and container from the path"


@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_sends_only_logs_to_the_gateways_loki_endpoint_with_the_same_labels(plans, stack):
    plan = plans[stack]
    config, gateway = relay(plan, node_logs.RELEASE), relay(plan, "opentelemetry-collector")
    assert set(config["service"]["pipelines"]) == {"logs"}
    logs = config["service"]["pipelines"]["logs"]
    assert logs["receivers"] == [node_logs.RECEIVER] and set(config["receivers"]) == {node_logs.RECEIVER}
    (exporter,) = logs["exporters"]
    assert set(config["exporters"]) == {exporter}
    (gateway_logs,) = gateway["service"]["pipelines"]["logs"]["exporters"]
    assert config["exporters"][exporter]["endpoint"] == gateway["exporters"][gateway_logs]["endpoint"]
    assert config["exporters"][exporter]["endpoint"].endswith(":3100/otlp")
    assert logs["processors"][0] == "memory_limiter" and logs["processors"][-1] == "batch"
    (labeller,) = [p for p in logs["processors"] if p.startswith("resource/")]
    (gateway_labeller,) = [p for p in gateway["service"]["pipelines"]["logs"]["processors"] if p.startswith("resource/")]
    assert config["processors"][labeller] == gateway["processors"][gateway_labeller]
    assert logs["processors"].index("k8s_attributes") < logs["processors"].index(labeller)
    assert config["processors"]["k8s_attributes"]["filter"] == {"node_from_env_var": "K8S_NODE_NAME"}, "each agent watches its own node's pods"


@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_listens_on_its_metrics_port_alone_and_is_scraped(plans, stack):
    plan = plans[stack]
    (container,) = agent(plan)["spec"]["template"]["spec"]["containers"]
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("metrics", node_logs.METRICS_PORT)]
    (monitor,) = children(plan, node_logs.RELEASE, "PodMonitor")
    labels = agent(plan)["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == ["metrics"]


@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_may_read_pods_namespaces_and_replicasets_and_nothing_else(plans, stack):
    (role,) = children(plans[stack], node_logs.RELEASE, "ClusterRole")
    grants = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
              for resource in rule["resources"] for verb in rule["verbs"]}
    assert grants == {(group, resource, verb) for verb in ("get", "list", "watch")
                      for group, resource in (("", "pods"), ("", "namespaces"), ("apps", "replicasets"), ("extensions", "replicasets"))}
    (binding,) = children(plans[stack], node_logs.RELEASE, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": agent(plans[stack])["spec"]["template"]["spec"]["serviceAccountName"],
                                    "namespace": node_logs_namespace(stack)}]


# --- network --------------------------------------------------------------------------------------

def labels_of(selector: dict) -> tuple | str:
    """A selector's matchLabels as sorted pairs, or the whole selector when it says more (expressions)."""
    if set(selector) <= {"matchLabels"}:
        return tuple(sorted(selector.get("matchLabels", {}).items()))
    return json.dumps(selector, sort_keys=True)


def policy_flows(plan: dict, namespace: str) -> set[tuple]:
    """(policy, direction, selected pods, peer namespace, peer pods or CIDR, ports) of a namespace's allow policies."""
    found = set()
    for policy in objects(plan, "NetworkPolicy"):
        if policy["metadata"]["namespace"] != namespace or policy["metadata"]["name"] in ("default-deny", "allow-dns-egress"):
            continue
        spec = policy["spec"]
        for direction in spec["policyTypes"]:
            for clause in spec[direction.lower()]:
                ports = tuple(sorted(p["port"] for p in clause.get("ports", [])))  # none listed: every port
                for peer in clause["from" if direction == "Ingress" else "to"]:
                    where = json.dumps(peer["namespaceSelector"]) if "namespaceSelector" in peer else namespace
                    where = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name", where)
                    what = peer["ipBlock"]["cidr"] if "ipBlock" in peer else labels_of(peer.get("podSelector", {}))
                    found.add((policy["metadata"]["name"], direction, labels_of(spec["podSelector"]),
                               None if "ipBlock" in peer else where, what, ports))
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_the_agent_reaches_loki_and_the_api_server_and_is_reached_by_prometheus_only(plans, stack):
    s = loaded(stack).core
    plan, mine = plans[stack], node_logs_namespace(stack)
    obs = s.namespaces.observability.name
    agent_pods = tuple(sorted(agent(plan)["spec"]["template"]["metadata"]["labels"].items()))
    selected = tuple(sorted(node_logs.POD_LABELS.items()))
    assert set(selected) <= set(agent_pods)
    loki = (("app.kubernetes.io/name", "loki"),)
    prometheus = (("app.kubernetes.io/name", "prometheus"),)
    assert policy_flows(plan, mine) == {
        ("node-log-agent-to-loki", "Egress", selected, obs, loki, (3100,)),
        ("node-log-agent-to-kubernetes-api", "Egress", selected, None, s.api_server_cidr, (443, 6443)),
        ("node-log-agent-metrics-scrape", "Ingress", selected, obs, prometheus, (node_logs.METRICS_PORT,)),
    }
    theirs = {f for f in policy_flows(plan, obs) if f[3] == mine}
    assert theirs == {
        ("loki-from-node-log-agent", "Ingress", loki, mine, selected, (3100,)),
        ("prometheus-scrape", "Egress", prometheus, mine, selected, (node_logs.METRICS_PORT,)),
    }
    (loki_service,) = [o for o in objects(plan, "Service") if o["metadata"]["namespace"] == obs
                       and o["metadata"]["name"] == ("loki-write" if loaded(stack).core.observability.loki.mode == "scalable" else "loki")]
    assert set(loki) <= set(loki_service["spec"]["selector"].items())
    assert re.search(rf"//{loki_service['metadata']['name']}\.{obs}\.svc\.cluster\.local:3100/otlp$",
                     relay(plan, node_logs.RELEASE)["exporters"]["otlp_http/loki"]["endpoint"])
