"""The gate against the real program: both stacks pass, and every hardening property is load-bearing.

"Load-bearing" is checked by mutation on the prod plan: for every pod the pod rules see (each pod
of a Kubernetes workload, of a ClickHouse/Keeper installation's pod templates, and each pod an
operator builds from a Strimzi Kafka/KafkaNodePool or CloudNativePG Cluster), one property at a
time is removed or weakened on the pod's first container and the gate must report a new blocking
violation of the right rule on that object:

* signed-images: the image's digest removed (containers whose image the resource names);
* non-root: runAsNonRoot, allowPrivilegeEscalation, capabilities.drop or seccompProfile removed,
  privileged: true set, runAsUser: 0 set;
* resource-limits: limits or requests removed;
* read-only-root-filesystem: readOnlyRootFilesystem removed;
* no-host-access: hostNetwork: true (pods with a pod spec; operator CRs have no such field) and a
  hostPath volume added (where the object has a volumes list: pod specs, Strimzi templates).

Then: deleting only a namespace's ``default-deny`` NetworkPolicy (its allow policies stay) fails
default-deny-network-policy, and removing a Namespace's pod-security label fails
namespace-pod-security. These tests render the stacks with ``tools.render.render``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
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
STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def _render(stack: str, out_dir: Path) -> dict[str, Any]:
    from tools.render import render

    return render(stack, out_dir=out_dir)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {stack: _render(stack, tmp_path_factory.mktemp(stack)) for stack in ("dev", "prod")}


def _config(stack: str) -> dict[str, Any]:
    return load_config_file(stack_config_path(stack))


def _view(resource: dict[str, Any]) -> ResourceView:
    return ResourceView.of(resource["type"], resource["name"], resource["urn"], resource["inputs"])


def _pod_carriers(plan: dict[str, Any]) -> list[int]:
    return [i for i, r in enumerate(plan["resources"]) if carries_pod_template(r["type"])]


def _waived(resource: dict[str, Any], rule: str) -> bool:
    annotations = resource["inputs"].get("metadata", {}).get("annotations") or {}
    return f"{WAIVER_PREFIX}{rule}" in annotations


def _steps(path: str) -> list[str | int]:
    return [name if name else int(index) for name, index in STEP.findall(path)]


def _parent(inputs: dict[str, Any], path: str, create: bool) -> tuple[Any, str | int] | None:
    """The container of the last step of ``path`` (created as dicts when ``create``), and that step."""
    *head, last = _steps(path)
    node: Any = inputs
    for step in head:
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
        elif isinstance(node, dict):
            node = node.setdefault(step, {}) if create else node.get(step)
        else:
            node = None
        if node is None:
            return None
    return node, last


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
    if pod.places:
        return False  # operator pods (Strimzi, CloudNativePG) have no host-namespace field
    _set(inputs, pod.where("hostNetwork"), True)
    return True


def _host_path(inputs: dict[str, Any], pod: PodTemplate, c: ContainerRef) -> bool:
    if pod.places and "volumes" not in pod.places:
        return False
    volumes = pod.get("volumes")
    _set(inputs, pod.where("volumes"), [*(volumes or []), {"name": "host-root", "hostPath": {"path": "/"}}])
    return True


MUTATIONS: list[tuple[str, str, Mutation]] = [
    ("signed-images", "image digest", _unpin),
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


@pytest.mark.parametrize("stack", ["dev", "prod"])
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
    before = {(line.urn, line.message) for line in run_gate(plan, config).blocking if line.rule == rule}
    checked: set[str] = set()
    for index in _pod_carriers(plan):
        original = plan["resources"][index]
        if _waived(original, rule):
            continue
        for pod_index, pod in enumerate(pod_templates(_view(original))):
            if not pod.containers:
                continue
            resource = copy.deepcopy(original)
            pod = pod_templates(_view(resource))[pod_index]
            if not mutate(resource["inputs"], pod, pod.containers[0]):
                continue
            mutated = {**plan, "resources": [*plan["resources"][:index], resource, *plan["resources"][index + 1 :]]}
            report = run_gate(mutated, config)
            new = [
                line
                for line in report.blocking
                if line.rule == rule and line.urn == resource["urn"] and (line.urn, line.message) not in before
            ]
            assert new, f"{prop} on {pod.containers[0].label} of {resource['urn']} did not fail {rule}"
            checked.add(resource["type"])
    assert checked, f"no unwaived pod to weaken {prop} on"
    assert any(is_custom_resource(t) for t in checked), f"{prop} was tried on no custom resource: {sorted(checked)}"


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
