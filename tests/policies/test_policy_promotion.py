"""The gate against the real program: both stacks pass, and every hardening property is load-bearing.

These tests render the stacks with ``tools.render.render`` (the lead's offline runner) and fail
until it exists: they are the acceptance tests of the promotion gate, not optional extras.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from policies.config import load_config_file, stack_config_path
from policies.podspec import POD_SPEC_PATHS
from policies.waivers import WAIVER_PREFIX
from tools.gate import run_gate

PodMutation = Callable[[dict[str, Any], dict[str, Any]], None]
DIGEST_SUFFIX = re.compile(r"@sha256:[0-9a-f]{64}$")


def _render(stack: str, out_dir: Path) -> dict[str, Any]:
    from tools.render import render

    return render(stack, out_dir=out_dir)


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {stack: _render(stack, tmp_path_factory.mktemp(stack)) for stack in ("dev", "prod")}


def _config(stack: str) -> dict[str, Any]:
    return load_config_file(stack_config_path(stack))


def _pod_spec(resource: dict[str, Any]) -> dict[str, Any]:
    node = resource["inputs"]
    for step in POD_SPEC_PATHS[resource["type"]]:
        node = node[step]
    return node


def _workloads(plan: dict[str, Any]) -> list[int]:
    return [i for i, r in enumerate(plan["resources"]) if r["type"] in POD_SPEC_PATHS]


def _waived(resource: dict[str, Any], rule: str) -> bool:
    annotations = resource["inputs"].get("metadata", {}).get("annotations") or {}
    return f"{WAIVER_PREFIX}{rule}" in annotations


def _drop(mapping: dict[str, Any] | None, *path: str) -> None:
    for step in path[:-1]:
        mapping = (mapping or {}).get(step)
    if isinstance(mapping, dict):
        mapping.pop(path[-1], None)


def _unpin(pod: dict[str, Any], c: dict[str, Any]) -> None:
    c["image"] = DIGEST_SUFFIX.sub("", c["image"])


MUTATIONS: list[tuple[str, str, PodMutation]] = [
    ("signed-images", "image digest", _unpin),
    (
        "non-root",
        "runAsNonRoot",
        lambda pod, c: (_drop(pod, "securityContext", "runAsNonRoot"), _drop(c, "securityContext", "runAsNonRoot")),
    ),
    ("non-root", "allowPrivilegeEscalation", lambda pod, c: _drop(c, "securityContext", "allowPrivilegeEscalation")),
    ("non-root", "capabilities.drop", lambda pod, c: _drop(c, "securityContext", "capabilities", "drop")),
    (
        "non-root",
        "seccompProfile",
        lambda pod, c: (_drop(pod, "securityContext", "seccompProfile"), _drop(c, "securityContext", "seccompProfile")),
    ),
    ("resource-limits", "limits", lambda pod, c: _drop(c, "resources", "limits")),
    ("resource-limits", "requests", lambda pod, c: _drop(c, "resources", "requests")),
    (
        "read-only-root-filesystem",
        "readOnlyRootFilesystem",
        lambda pod, c: _drop(c, "securityContext", "readOnlyRootFilesystem"),
    ),
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


def test_prod_plan_has_workloads_to_mutate(plans: dict[str, dict[str, Any]]) -> None:
    assert _workloads(plans["prod"])


@pytest.mark.parametrize(("rule", "prop", "mutate"), MUTATIONS, ids=[f"{r}:{p}" for r, p, _ in MUTATIONS])
def test_removing_one_hardening_property_fails_the_gate(
    plans: dict[str, dict[str, Any]], rule: str, prop: str, mutate: PodMutation
) -> None:
    plan, config = plans["prod"], _config("prod")
    checked = 0
    for index in _workloads(plan):
        original = plan["resources"][index]
        if _waived(original, rule):
            continue
        resource = copy.deepcopy(original)
        pod = _pod_spec(resource)
        mutate(pod, pod["containers"][0])
        mutated = {**plan, "resources": [*plan["resources"][:index], resource, *plan["resources"][index + 1 :]]}
        report = run_gate(mutated, config)
        named = [line for line in report.blocking if line.rule == rule and line.urn == resource["urn"]]
        assert named, f"removing {prop} from {resource['urn']} did not fail {rule}"
        checked += 1
    assert checked, f"no unwaived workload to remove {prop} from"


def test_removing_a_default_deny_policy_fails_the_gate(plans: dict[str, dict[str, Any]]) -> None:
    plan, config = plans["prod"], _config("prod")
    policies = [r for r in plan["resources"] if r["type"] == "kubernetes:networking.k8s.io/v1:NetworkPolicy"]
    namespaces = {plan["resources"][i]["inputs"]["metadata"].get("namespace") for i in _workloads(plan)}
    assert namespaces, "no workload namespace to strip of its default-deny policy"
    for namespace in namespaces:
        kept = [
            r for r in plan["resources"] if r not in policies or r["inputs"]["metadata"].get("namespace") != namespace
        ]
        report = run_gate({**plan, "resources": kept}, config)
        assert any(line.rule == "default-deny-network-policy" for line in report.blocking), namespace


def test_removing_the_pod_security_label_fails_the_gate(plans: dict[str, dict[str, Any]]) -> None:
    plan, config = plans["prod"], _config("prod")
    for index, resource in enumerate(plan["resources"]):
        if resource["type"] != "kubernetes:core/v1:Namespace" or _waived(resource, "namespace-pod-security"):
            continue
        mutated_resource = copy.deepcopy(resource)
        _drop(mutated_resource["inputs"], "metadata", "labels", "pod-security.kubernetes.io/enforce")
        mutated = {**plan, "resources": [*plan["resources"][:index], mutated_resource, *plan["resources"][index + 1 :]]}
        report = run_gate(mutated, config)
        assert any(line.rule == "namespace-pod-security" and line.urn == resource["urn"] for line in report.blocking)
