"""gatekeeper-library style: every sample under samples/<rule>/pass must pass, every fail sample must fail
with its expected message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from policy_support import SAMPLES, rule_config

from policies.evaluate import Outcome, check_resource, check_stack
from policies.model import ResourceView
from policies.operator_pods import OPERATOR_PODS
from policies.podspec import POD_TEMPLATE_LISTS, group_kind
from policies.rules import RULES, RULES_BY_NAME


def _samples() -> list[Any]:
    return [
        pytest.param(path, id=f"{path.parts[-3]}/{path.parts[-2]}/{path.stem}")
        for path in sorted(SAMPLES.glob("*/*/*.yaml"))
    ]


def _view(item: dict[str, Any]) -> ResourceView:
    name = item["name"]
    return ResourceView.of(item["type"], name, f"urn:pulumi:test::somaagenthub::{item['type']}::{name}", item["props"])


def _run(path: Path) -> tuple[dict[str, Any], list[Outcome]]:
    sample = yaml.safe_load(path.read_text())
    rule = RULES_BY_NAME[path.parts[-3]]
    config = rule_config(rule, sample.get("config"))
    if rule.is_stack_rule:
        return sample, check_stack(rule, [_view(item) for item in sample["resources"]], config)
    return sample, check_resource(rule, _view(sample), config)


def test_every_rule_has_pass_and_fail_samples() -> None:
    for rule in RULES:
        assert list((SAMPLES / rule.name / "pass").glob("*.yaml")), rule.name
        assert len(list((SAMPLES / rule.name / "fail").glob("*.yaml"))) >= 2, rule.name


POD_RULES = (
    "non-root",
    "resource-limits",
    "read-only-root-filesystem",
    "no-host-access",
    "no-plaintext-secrets",
    "digest-pinned-images",
)


@pytest.mark.parametrize("rule", POD_RULES)
def test_pod_rules_have_samples_for_every_custom_resource_kind(rule: str) -> None:
    """Each custom resource kind podspec finds pods in is shown passing and failing every pod rule.

    (no-host-access and digest-pinned-images have no fail sample for a kind with no field to fail on:
    a CloudNativePG Cluster has no host fields, a KafkaNodePool takes its image from its Kafka.)
    """
    exempt = {("no-host-access", "postgresql.cnpg.io/Cluster"), ("digest-pinned-images", "kafka.strimzi.io/KafkaNodePool")}
    kinds = set(POD_TEMPLATE_LISTS) | set(OPERATOR_PODS)
    for outcome in ("pass", "fail"):
        seen = {
            group_kind(yaml.safe_load(path.read_text())["type"]) for path in (SAMPLES / rule / outcome).glob("*.yaml")
        }
        missing = {k for k in kinds - seen if outcome == "pass" or (rule, k) not in exempt}
        assert not missing, (rule, outcome, sorted(missing))


@pytest.mark.parametrize("path", _samples())
def test_sample(path: Path) -> None:
    sample, outcomes = _run(path)
    messages = [o.message for o in outcomes]
    assert all(o.unresolved is None and not o.waived for o in outcomes)
    if path.parts[-2] == "pass":
        assert messages == [], sample["description"]
    else:
        assert any(sample["expect"] in m for m in messages), (sample["expect"], messages)
