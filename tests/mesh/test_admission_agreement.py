"""Admission and the gate agree (issue 11, point 4): every pod of the rendered plans, every constraint's Rego.

Each pod the plan starts (Kubernetes workloads, ClickHouse pod templates, operator-made pods as
policies/operator_pods.py models them) is evaluated with regopy against every constraint of its stack, with
that stack's parameters and exemptions; the gate's rules judge the same resource with the same policy config,
waivers included. For every resource and pack rule, admission refuses exactly when the gate does. Then pods
broken one way at a time are refused by both.
"""
from __future__ import annotations

import copy

import pytest

from components.mesh.admission.policies import RULE_TEMPLATES, constraints, pack_settings

from tests.mesh.admission_rego import gate_refuses, plan_pods, violations, with_pod_spec
from tools.gate import plan_views

STACKS = ("dev", "staging", "prod")


def _admission_refuses(by_rule, rule, pods) -> list[str]:
    return [f"{p.label}: {m}" for c in by_rule[rule] for p in pods for m in violations(c, p.pod)]


def _by_rule(stack: str):
    found = {}
    for c in constraints(stack, "deny"):
        found.setdefault(c.rule, []).append(c)
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_admission_and_gate_agree_on_every_pod_of_the_plan(plans, stack):
    config, by_rule = pack_settings(stack), _by_rule(stack)
    judged, disagreements = 0, []
    for resource in plan_views(plans[stack]):
        pods = list(plan_pods(resource))
        if not pods:
            continue
        judged += len(pods)
        for rule in RULE_TEMPLATES:
            gate = gate_refuses(resource, rule, config)
            admission = _admission_refuses(by_rule, rule, pods)
            if bool(gate) != bool(admission):
                disagreements.append(f"{resource.resource_id} {rule}: gate {gate[:2]} admission {admission[:2]}")
    assert judged > 25, f"only {judged} pods found in the {stack} plan"
    assert not disagreements, "\n".join(disagreements)


def _break(kind: str):
    def first(spec):
        return spec["containers"][0]

    def apply(spec):
        spec = copy.deepcopy(spec)
        c = first(spec)
        sc = c.setdefault("securityContext", {})
        if kind == "runAsNonRoot false":
            sc["runAsNonRoot"] = False
            spec.setdefault("securityContext", {})["runAsNonRoot"] = False
        elif kind == "root uid":
            sc["runAsUser"] = 0
        elif kind == "no limits":
            c.setdefault("resources", {}).pop("limits", None)
        elif kind == "tag without digest":
            c["image"] = c["image"].split("@", 1)[0]
        elif kind == "another registry":
            c["image"] = "evil.example.com/" + c["image"].split("/", 1)[1]
        elif kind == "hostPath":
            spec.setdefault("volumes", []).append({"name": "host", "hostPath": {"path": "/etc"}})
        elif kind == "hostNetwork":
            spec["hostNetwork"] = True
        elif kind == "hostPort":
            c["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
        elif kind == "privileged":
            sc["privileged"] = True
        elif kind == "writable root":
            sc["readOnlyRootFilesystem"] = False
        elif kind == "capabilities kept":
            sc["capabilities"] = {"drop": ["NET_RAW"]}
        elif kind == "seccomp unconfined":
            sc["seccompProfile"] = {"type": "Unconfined"}
        return spec
    return apply


BREAKS = {
    "runAsNonRoot false": "non-root", "root uid": "non-root", "privileged": "non-root",
    "capabilities kept": "non-root", "seccomp unconfined": "non-root",
    "no limits": "resource-limits", "tag without digest": "digest-pinned-images",
    "another registry": "digest-pinned-images", "hostPath": "no-host-access", "hostNetwork": "no-host-access",
    "hostPort": "no-host-access", "writable root": "read-only-root-filesystem",
}


# staging's policy config is prod's (tests/policies/test_staging_policy_config.py) and its plan passes the agreement
# above, so one broken pod per break and per configuration (advisory dev, mandatory prod) is enough
@pytest.mark.parametrize("stack", ("dev", "prod"))
@pytest.mark.parametrize("breakage", sorted(BREAKS))
def test_a_broken_pod_is_refused_by_both(plans, stack, breakage):
    """Every workload Deployment of the plan, broken one way, is refused by the gate and by admission."""
    config, by_rule, rule = pack_settings(stack), _by_rule(stack), BREAKS[breakage]
    workloads = [r for r in plan_views(plans[stack]) if r.type == "kubernetes:apps/v1:Deployment"
                 and not gate_refuses(r, rule, config) and list(plan_pods(r))]
    assert len(workloads) > 5
    for resource in workloads:
        pod = next(plan_pods(resource))
        broken = with_pod_spec(resource, 0, _break(breakage)(pod.pod["spec"]))
        assert gate_refuses(broken, rule, config), f"the gate admits {resource.resource_id} with {breakage}"
        refused = _admission_refuses(by_rule, rule, list(plan_pods(broken)))
        assert refused, f"admission admits {resource.resource_id} with {breakage}"
