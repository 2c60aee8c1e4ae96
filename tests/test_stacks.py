"""The three stacks (docs/stacks.md): dev, staging and prod each have a stack file and a policy config, every
stack-keyed place knows all three, staging enforces what prod enforces, and staging is sized between dev and prod.

"Between" is read from the stack files themselves, key by key: every namespace quota, every replica count
(replicas, instances, controllers, brokers, servers, shards, volumes per server), every volume size and every
retention that all three stacks set satisfies dev <= staging <= prod. Keys only some stacks set (Argo CD, which
staging leaves to prod's Argo CD) are not compared; the test counts what it compares so that it cannot pass
by comparing nothing.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from components import settings
from policies.config import resolve_settings, load_config_file, stack_config_path
from policies.rules import RULES
from tests.conftest import STACKS
from tools.render import ROOT, RenderError, stack_config

ORDER = ("dev", "staging", "prod")
COUNTS = {"replicas", "instances", "controllers", "brokers", "servers", "shards", "volumesperserver",
          "proxyreplicas", "opareplicas", "alertmanagerreplicas", "auditpartitions"}
SIZES = {"storage", "walstorage", "controllerstorage", "volumesize"}
RETENTIONS = {"retention", "backupretentiondays", "auditretentiondays", "auditretentionhours"}
QUANTITY = re.compile(r"^([0-9.]+)(m|Ki|Mi|Gi|Ti|Pi|)$")
UNITS = {"m": 0.001, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "": 1}
DURATION = re.compile(r"^([0-9]+)(h|d|w|y)$")
HOURS = {"h": 1, "d": 24, "w": 168, "y": 8760}


def document(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]


def amount(value: Any) -> float:
    """A quota, count, size or retention as one comparable number (CPU in cores, bytes, hours)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value)
    if match := QUANTITY.match(text):
        return float(match.group(1)) * UNITS[match.group(2)]
    if match := DURATION.match(text):
        return float(match.group(1)) * HOURS[match.group(2)]
    raise AssertionError(f"not a quantity, count or duration: {value!r}")


def sized_leaves(tree: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) of every quota field, replica count, volume size and retention in a stack document."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from sized_leaves(value, (*path, str(key)))
    elif path:
        key = path[-1].lower()
        if "quota" in path or key in COUNTS or key in SIZES or key in RETENTIONS:
            yield path, tree


def ordering_problems(documents: dict[str, dict]) -> tuple[list[str], int]:
    """(every key where staging is not between dev and prod, how many keys all three set)."""
    leaves = {stack: dict(sized_leaves(documents[stack])) for stack in ORDER}
    shared = sorted(set(leaves["dev"]) & set(leaves["staging"]) & set(leaves["prod"]))
    problems = []
    for path in shared:
        dev, staging, prod = (leaves[s][path] for s in ORDER)
        if not amount(dev) <= amount(staging) <= amount(prod):
            problems.append(f"{'.'.join(path)}: dev {dev}, staging {staging}, prod {prod}")
    return problems, len(shared)


def test_every_stack_has_a_stack_file_a_policy_config_and_is_rendered_by_the_tests():
    assert STACKS == ORDER, "tests/conftest.py renders every stack, in promotion order"
    assert sorted(p.name for p in ROOT.glob("Pulumi.*.yaml")) == sorted(f"Pulumi.{s}.yaml" for s in ORDER)
    assert sorted(p.stem for p in (ROOT / "policies" / "config").glob("*.json")) == sorted(ORDER)
    assert settings.ENVIRONMENTS == ORDER, "Argo CD's promotion waves name the same stacks in the same order"
    with pytest.raises(RenderError, match="stack files here: Pulumi.dev.yaml, Pulumi.prod.yaml, Pulumi.staging.yaml"):
        stack_config("qa")


def test_staging_enforces_what_prod_enforces():
    staging, prod = (settings.parse(stack_config(s), s) for s in ("staging", "prod"))
    assert staging.stack == "staging"
    same = ("policy_enforcement", "high_availability", "deletion_protection", "registry", "storage_class", "kubernetes_version")
    assert {f: getattr(staging, f) for f in same} == {f: getattr(prod, f) for f in same}
    assert staging.mesh.signatures.verify_by == prod.mesh.signatures.verify_by == "platformKey"
    assert staging.core.vault.seal.type == prod.core.vault.seal.type != "shamir"
    assert staging.core.vault.seal.key_name != prod.core.vault.seal.key_name, "staging holds no key that unseals prod"
    assert staging.core.backups.offsite.bucket != prod.core.backups.offsite.bucket, "a staging restore drill never touches prod's backups"
    assert staging.domain not in (prod.domain, settings.parse(stack_config("dev"), "dev").domain)
    assert staging.mesh.identity.trust_domain == staging.domain
    # its own namespaces only where prod has them (the same purposes, the same names), and fault injection's
    namespace_keys = settings._namespace_keys  # noqa: SLF001 - the settings' own map of <phase>.<purpose> -> name
    staging_namespaces, prod_namespaces = namespace_keys(staging), namespace_keys(prod)
    assert prod_namespaces.items() <= staging_namespaces.items()
    assert all("chaos" in key.lower() for key in set(staging_namespaces) - set(prod_namespaces)), staging_namespaces
    # every rule is mandatory in its policy config, as in prod's
    levels = {name: s.level for name, s in resolve_settings(load_config_file(stack_config_path("staging")), RULES).items()}
    assert set(levels.values()) == {"mandatory"}


def test_staging_is_sized_between_dev_and_prod():
    problems, compared = ordering_problems({stack: document(stack) for stack in ORDER})
    assert problems == []
    assert compared >= 150, f"only {compared} sized keys compared"


def test_every_namespace_quota_of_prod_is_compared():
    leaves = {stack: dict(sized_leaves(document(stack))) for stack in ORDER}
    prod_quotas = {p for p in leaves["prod"] if "quota" in p}
    assert prod_quotas and prod_quotas <= set(leaves["staging"]) & set(leaves["dev"])


@pytest.mark.parametrize("change, reported", [
    (("somaagenthub:core", "postgres", "instances", 5), "somaagenthub:core.postgres.instances: dev 1, staging 5, prod 3"),
    (("somaagenthub:ops", "namespaces", "ops", "quota", "requestsMemory", "128Mi"),
     "somaagenthub:ops.namespaces.ops.quota.requestsMemory: dev 512Mi, staging 128Mi, prod 8Gi"),
    (("somaagenthub:core", "observability", "prometheus", "retention", "1d"),
     "somaagenthub:core.observability.prometheus.retention: dev 2d, staging 1d, prod 15d"),
    (("somaagenthub:core", "kafka", "storage", "1Ti"), "somaagenthub:core.kafka.storage: dev 2Gi, staging 1Ti, prod 500Gi"),
])
def test_a_staging_value_outside_dev_and_prod_is_reported_by_key(change, reported):
    documents = {stack: document(stack) for stack in ORDER}
    *path, last, value = change
    node = documents["staging"]
    for key in path:
        node = node[key]
    node[last] = value
    problems, _ = ordering_problems(documents)
    assert problems == [reported]
