"""The gate against the real program: every stack passes, and every hardening property is load-bearing.

"Load-bearing" is checked by mutation on the prod plan: for every pod the pod rules see (each pod
of a Kubernetes workload, the program's own and those the Helm charts render, of a
ClickHouse/Keeper installation's pod templates, and each pod an operator builds from a Strimzi
Kafka/KafkaNodePool, a CloudNativePG Cluster or a Prometheus/Alertmanager), one property at a
time is removed or weakened on the pod's first container and the gate must report a new blocking
violation of the right rule on that object. Every chart that renders pods must have had one of
them weakened, for every property:

* digest-pinned-images: the image's digest removed (containers whose image the resource names);
* non-root: runAsNonRoot, allowPrivilegeEscalation, capabilities.drop or seccompProfile removed,
  privileged: true set, runAsUser: 0 set;
* resource-limits: limits or requests removed;
* read-only-root-filesystem: readOnlyRootFilesystem removed;
* no-host-access: hostNetwork: true (pod specs, and Prometheus/Alertmanager's spec.hostNetwork;
  Strimzi and CloudNativePG resources have no such field) and a hostPath volume added (where the
  object has a volumes list: pod specs, Strimzi templates, Prometheus/Alertmanager spec.volumes).

Operator places may select a list item by name (``spec.containers[name=prometheus].securityContext``);
a mutation that sets a value under such a place creates the item ``{name: prometheus}`` when the
resource does not list it.

Then: deleting only a namespace's ``default-deny`` NetworkPolicy (its allow policies stay) fails
default-deny-network-policy, and removing a Namespace's pod-security label fails
namespace-pod-security. The plans are the session's (tests/conftest.py ``plans``), rendered once per worker;
the mutations work on copies.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from policies.config import load_config_file, stack_config_path
from policies.model import ResourceView
from policies.podspec import ContainerRef, PodTemplate, carries_pod_template, is_custom_resource, pod_templates
from policies.waivers import WAIVER_PREFIX
from tools.gate import run_gate

Mutation = Callable[[dict[str, Any], PodTemplate, ContainerRef], bool]
"""Mutates a resource's inputs for one pod and container; False when the property has no place there."""
DIGEST_SUFFIX = re.compile(r"@sha256:[0-9a-f]{64}$")
STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[([^=\]]+)=([^\]]*)\]")
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"




def _config(stack: str) -> dict[str, Any]:
    return load_config_file(stack_config_path(stack))


def _view(resource: dict[str, Any]) -> ResourceView:
    return ResourceView.of(resource["type"], resource["name"], resource["urn"], resource["inputs"])


def _chart_of(plan: dict[str, Any], resource: dict[str, Any]) -> str | None:
    """The name of the Helm chart that rendered ``resource`` (None for the program's own objects)."""
    parent = resource.get("parent") or ""
    chain = parent.split("::")[2] if parent.count("::") >= 3 else ""
    return parent.rsplit("::", 1)[-1] if chain.endswith("kubernetes:helm.sh/v4:Chart") else None


def _pod_carriers(plan: dict[str, Any]) -> list[int]:
    return [i for i, r in enumerate(plan["resources"]) if carries_pod_template(r["type"])]


def _waived(resource: dict[str, Any], rule: str) -> bool:
    annotations = resource["inputs"].get("metadata", {}).get("annotations") or {}
    return f"{WAIVER_PREFIX}{rule}" in annotations


Step = str | int | tuple[str, str]


def _steps(path: str) -> list[Step]:
    """``spec.containers[name=x].env[0]`` -> ``["spec", "containers", ("name", "x"), "env", 0]``."""
    steps: list[Step] = []
    for name, index, key, value in STEP.findall(path):
        steps.append(name if name else int(index) if index else (key, value))
    return steps


def _child(node: Any, step: Step, then: Step | None, create: bool) -> Any:
    """One step down from ``node``; when ``create``, a missing key becomes what ``then`` indexes
    (a list before an index or a selector, else a dict) and a missing ``[name=x]`` item ``{name: x}``."""
    if isinstance(step, int):
        return node[step] if isinstance(node, list) and step < len(node) else None
    if isinstance(step, tuple):
        if not isinstance(node, list):
            return None
        key, value = step
        found = next((item for item in node if isinstance(item, dict) and item.get(key) == value), None)
        if found is None and create:
            found = {key: value}
            node.append(found)
        return found
    if not isinstance(node, dict):
        return None
    if create and node.get(step) is None:
        node[step] = [] if isinstance(then, (int, tuple)) else {}
    return node.get(step)


def _parent(inputs: dict[str, Any], path: str, create: bool) -> tuple[Any, Step] | None:
    """The container of the last step of ``path`` (created when ``create``), and that step."""
    steps = _steps(path)
    node: Any = inputs
    for position, step in enumerate(steps[:-1]):
        node = _child(node, step, steps[position + 1], create)
        if node is None:
            return None
    return node, steps[-1]


def _drop(inputs: dict[str, Any], path: str) -> None:
    found = _parent(inputs, path, create=False)
    if found and isinstance(found[0], dict):
        found[0].pop(found[1], None)


def _set(inputs: dict[str, Any], path: str, value: Any) -> None:
    found = _parent(inputs, path, create=True)
    assert found is not None and isinstance(found[0], dict), path
    found[0][found[1]] = value


def _unpin(inputs: dict[str, Any], pod: PodTemplate, c: ContainerRef) -> bool:
    image = c.get("image")
    if not isinstance(image, str) or (c.places and "image" not in c.places):
        return False
    _set(inputs, c.where("image"), DIGEST_SUFFIX.sub("", image))
    return True


def _drop_own(*keys: str) -> Mutation:
    def mutate(inputs: dict[str, Any], pod: PodTemplate, c: ContainerRef) -> bool:
        _drop(inputs, ".".join([c.where(keys[0]), *keys[1:]]))
        return True

    return mutate


def _drop_effective(key: str) -> Mutation:
    """Remove a securityContext key from the container, the pod and any resource-wide fallback."""

    def mutate(inputs: dict[str, Any], pod: PodTemplate, c: ContainerRef) -> bool:
        _drop(inputs, f"{c.where('securityContext')}.{key}")
        _drop(inputs, f"{pod.where('securityContext')}.{key}")
        if key in pod.places:
            _drop(inputs, pod.places[key])
        return True

    return mutate


def _set_own(key: str, value: Any) -> Mutation:
    def mutate(inputs: dict[str, Any], pod: PodTemplate, c: ContainerRef) -> bool:
        _set(inputs, f"{c.where('securityContext')}.{key}", value)
        return True

    return mutate


def _host_network(inputs: dict[str, Any], pod: PodTemplate, c: ContainerRef) -> bool:
    if pod.places and "hostNetwork" not in pod.places:
        return False  # Strimzi and CloudNativePG resources have no host-namespace field
    _set(inputs, pod.where("hostNetwork"), True)
    return True


def _host_path(inputs: dict[str, Any], pod: PodTemplate, c: ContainerRef) -> bool:
    if pod.places and "volumes" not in pod.places:
        return False
    volumes = pod.get("volumes")
    _set(inputs, pod.where("volumes"), [*(volumes or []), {"name": "host-root", "hostPath": {"path": "/"}}])
    return True


MUTATIONS: list[tuple[str, str, Mutation]] = [
    ("digest-pinned-images", "image digest", _unpin),
    ("non-root", "runAsNonRoot", _drop_effective("runAsNonRoot")),
    ("non-root", "allowPrivilegeEscalation", _drop_own("securityContext", "allowPrivilegeEscalation")),
    ("non-root", "capabilities.drop", _drop_own("securityContext", "capabilities", "drop")),
    ("non-root", "seccompProfile", _drop_effective("seccompProfile")),
    ("non-root", "privileged: true", _set_own("privileged", True)),
    ("non-root", "runAsUser: 0", _set_own("runAsUser", 0)),
    ("resource-limits", "limits", _drop_own("resources", "limits")),
    ("resource-limits", "requests", _drop_own("resources", "requests")),
    ("read-only-root-filesystem", "readOnlyRootFilesystem", _drop_own("securityContext", "readOnlyRootFilesystem")),
    ("no-host-access", "hostNetwork: true", _host_network),
    ("no-host-access", "hostPath volume", _host_path),
]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_passes_the_gate_with_no_mandatory_violation(plans: dict[str, dict[str, Any]], stack: str) -> None:
    report = run_gate(plans[stack], _config(stack))
    assert report.passed, report.render()
    assert report.blocking == ()


def test_dev_is_clean_even_when_every_rule_blocks(plans: dict[str, dict[str, Any]]) -> None:
    """dev is advisory, which must not become a place where violations pile up unseen."""
    config = {**_config("dev"), "all": "mandatory"}
    report = run_gate(plans["dev"], config)
    assert report.passed, report.render()


def test_prod_plan_has_workloads_and_custom_resources_to_mutate(plans: dict[str, dict[str, Any]]) -> None:
    types = {plans["prod"]["resources"][i]["type"] for i in _pod_carriers(plans["prod"])}
    assert any(not is_custom_resource(t) for t in types)
    assert any(is_custom_resource(t) for t in types)


@pytest.mark.parametrize(("rule", "prop", "mutate"), MUTATIONS, ids=[f"{r}:{p}" for r, p, _ in MUTATIONS])
def test_weakening_one_hardening_property_fails_the_gate(
    plans: dict[str, dict[str, Any]], rule: str, prop: str, mutate: Mutation
) -> None:
    plan, config = plans["prod"], _config("prod")
    baseline = run_gate(plan, config)
    before = {(line.urn, line.message) for line in baseline.blocking if line.rule == rule}
    # pods a chart renders whose prod allow-list already excuses this very property (the mesh's node agents
    # run as root with a writable root filesystem by design): weakening it further adds nothing to prove
    keyword = prop.split(":")[0].split()[0]
    excused = {line.urn for line in baseline.lines if line.rule == rule and line.level == "waived"
               and rule in ("non-root", "read-only-root-filesystem") and keyword in line.message}
    checked: set[str] = set()
    charts_checked: set[str | None] = set()
    for index in _pod_carriers(plan):
        original = plan["resources"][index]
        if _waived(original, rule) or original["urn"] in excused:
            continue
        for pod_index, pod in enumerate(pod_templates(_view(original))):
            if not pod.containers:
                continue
            resource = copy.deepcopy(original)
            pod = pod_templates(_view(resource))[pod_index]
            if not mutate(resource["inputs"], pod, pod.containers[0]):
                continue
            # resource rules judge each resource on its own: the weakened resource alone gives the same lines for it
            # as the whole plan would (stack rules' lines about the now tiny plan are not looked at), and this test
            # no longer re-judges ~1,200 resources per pod and property
            report = run_gate({**plan, "resources": [resource]}, config)
            new = [
                line
                for line in report.blocking
                if line.rule == rule and line.urn == resource["urn"] and (line.urn, line.message) not in before
            ]
            assert new, f"{prop} on {pod.containers[0].label} of {resource['urn']} did not fail {rule}"
            checked.add(resource["type"])
            charts_checked.add(_chart_of(plan, resource))
    assert checked, f"no unwaived pod to weaken {prop} on"
    assert any(is_custom_resource(t) for t in checked), f"{prop} was tried on no custom resource: {sorted(checked)}"
    with_pods = {chart["name"] for chart in plan["charts"] if chart["pods"]}
    excused_charts = {_chart_of(plan, r) for r in plan["resources"] if r["urn"] in excused}
    assert with_pods - charts_checked - excused_charts == set(), f"{prop} was tried on no pod of these charts"


PINNED = re.compile(r"([^\s=,]+)@sha256:[0-9a-f]{64}")


def _operator_default_images(plan: dict[str, Any]) -> list[tuple[int, list[str | int], str]]:
    """(resource index, path to the env value or argument, image) for every pinned image an operator
    container names for what it starts: env variables named *IMAGE* or *_BUILDER, and arguments."""
    found: list[tuple[int, list[str | int], str]] = []
    for index in _pod_carriers(plan):
        for pod in pod_templates(_view(plan["resources"][index])):
            if pod.places:
                continue
            for c in pod.containers:
                base: list[str | int] = [*_steps(c.path)]
                for i, env in enumerate(c.get("env") or []):
                    name = str(env.get("name", "")).upper()
                    value = env.get("value")
                    if ("IMAGE" in name or name.endswith("_BUILDER")) and isinstance(value, str):
                        found += [(index, [*base, "env", i, "value"], m.group(0)) for m in PINNED.finditer(value)]
                for i, arg in enumerate(c.get("args") or []):
                    if isinstance(arg, str) and arg.startswith("-"):
                        found += [(index, [*base, "args", i], m.group(0)) for m in PINNED.finditer(arg)]
    return found


def test_unpinning_an_operator_default_image_fails_the_gate(plans: dict[str, dict[str, Any]]) -> None:
    """The images operators start on their own (Strimzi's STRIMZI_DEFAULT_*_IMAGE, CloudNativePG's
    OPERATOR_IMAGE_NAME, the Prometheus operator's --prometheus-config-reloader) are load-bearing too."""
    plan, config = plans["prod"], _config("prod")
    images = _operator_default_images(plan)
    kinds = {("env" if "env" in path else "args") for _, path, _ in images}
    assert kinds == {"env", "args"}, f"expected pinned operator images in env and in args, found {kinds}"
    for index, path, image in images:
        resource = copy.deepcopy(plan["resources"][index])
        *head, last = path
        holder = resource["inputs"]
        for step in head:
            holder = holder[step]
        unpinned = DIGEST_SUFFIX.sub("", image)
        holder[last] = holder[last].replace(image, unpinned)
        mutated = {**plan, "resources": [*plan["resources"][:index], resource, *plan["resources"][index + 1 :]]}
        report = run_gate(mutated, config)
        assert any(
            line.rule == "digest-pinned-images"
            and line.urn == resource["urn"]
            and f"'{unpinned}' is not pinned" in line.message
            for line in report.blocking
        ), f"unpinning {image} at {path} of {resource['urn']} did not fail digest-pinned-images"


def _replace_in_strings(node: Any, old: str, new: str) -> int:
    """Replace ``old`` by ``new`` in every string under ``node`` (in place); how many strings changed."""
    changed = 0
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if isinstance(value, str) and old in value:
            node[key] = value.replace(old, new)
            changed += 1
        else:
            changed += _replace_in_strings(value, old, new)
    return changed


def test_image_waivers_excuse_only_their_image_on_their_object(plans: dict[str, dict[str, Any]]) -> None:
    """prod's image-scoped waivers (defaults operators name but never start here) each excuse a finding,
    and only for that image on that object: another image there, or that image elsewhere, blocks."""
    plan, config = plans["prod"], _config("prod")
    entries = [e for e in config["digest-pinned-images"]["allowedWaivers"] if e.get("image")]
    assert entries, "prod lists no image-scoped waiver"
    waived = [line for line in run_gate(plan, config).lines if line.waiver is not None and line.waiver.accepted]
    for entry in entries:
        assert any(
            line.rule == "digest-pinned-images"
            and line.waiver.resource_id == entry["resource"]
            and f"'{entry['image']}'" in line.message
            for line in waived
        ), f"the waiver for {entry['image']} on {entry['resource']} excuses nothing: remove it"

    entry = entries[0]
    index = next(i for i, r in enumerate(plan["resources"]) if _view(r).resource_id == entry["resource"])
    other_image = f"{entry['image']}-other"
    resource = copy.deepcopy(plan["resources"][index])
    assert _replace_in_strings(resource["inputs"], entry["image"], other_image)
    mutated = {**plan, "resources": [*plan["resources"][:index], resource, *plan["resources"][index + 1 :]]}
    assert any(
        line.urn == resource["urn"] and f"'{other_image}' is not pinned" in line.message
        for line in run_gate(mutated, config).blocking
    ), f"{other_image} on {entry['resource']} was excused by the waiver for {entry['image']}"

    elsewhere = next(
        i for i in _pod_carriers(plan)
        if i != index and not is_custom_resource(plan["resources"][i]["type"])
    )
    resource = copy.deepcopy(plan["resources"][elsewhere])
    pod = pod_templates(_view(resource))[0]
    _set(resource["inputs"], pod.containers[0].where("image"), entry["image"])
    mutated = {**plan, "resources": [*plan["resources"][:elsewhere], resource, *plan["resources"][elsewhere + 1 :]]}
    assert any(
        line.urn == resource["urn"] and f"'{entry['image']}' is not pinned" in line.message
        for line in run_gate(mutated, config).blocking
    ), f"the waiver for {entry['image']} on {entry['resource']} also excused it on {resource['urn']}"


def test_removing_only_the_default_deny_policy_fails_the_gate(plans: dict[str, dict[str, Any]]) -> None:
    plan, config = plans["prod"], _config("prod")
    namespaces = {_view(plan["resources"][i]).namespace for i in _pod_carriers(plan)}
    assert namespaces, "no workload namespace to strip of its default-deny policy"
    for namespace in namespaces:
        removed = [
            r
            for r in plan["resources"]
            if r["type"] == NETWORK_POLICY
            and r["inputs"]["metadata"].get("namespace") == namespace
            and r["inputs"]["metadata"].get("name") == "default-deny"
        ]
        assert len(removed) == 1, f"namespace {namespace} has {len(removed)} default-deny policies"
        kept = [r for r in plan["resources"] if r is not removed[0]]
        assert len(kept) == len(plan["resources"]) - 1
        report = run_gate({**plan, "resources": kept}, config)
        assert any(
            line.rule == "default-deny-network-policy" and f"namespace '{namespace}'" in line.message
            for line in report.blocking
        ), namespace


def test_removing_the_pod_security_label_fails_the_gate(plans: dict[str, dict[str, Any]]) -> None:
    plan, config = plans["prod"], _config("prod")
    for index, resource in enumerate(plan["resources"]):
        if resource["type"] != "kubernetes:core/v1:Namespace" or _waived(resource, "namespace-pod-security"):
            continue
        mutated_resource = copy.deepcopy(resource)
        del mutated_resource["inputs"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        mutated = {**plan, "resources": [*plan["resources"][:index], mutated_resource, *plan["resources"][index + 1 :]]}
        report = run_gate(mutated, config)
        assert any(line.rule == "namespace-pod-security" and line.urn == resource["urn"] for line in report.blocking)
