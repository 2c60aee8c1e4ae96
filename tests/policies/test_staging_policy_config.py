"""policies/config/staging.json is prod's policy configuration, plus fault injection and nothing else.

staging.json is a complete file (it is what ``pulumi preview --policy-pack-config`` takes), so it is a copy,
and a copy drifts. This compares the two documents generally: prod's configuration must be contained in
staging's (every key with the same value, every list item present), so staging refuses everything prod
refuses. What staging may add is the fault-injection exception of issue 16, point 3, and only that:

* an entry of an ``allowedWaivers`` list whose ``resource`` names Chaos Mesh (``chaos`` in it, e.g. the
  chaos-daemon DaemonSet in the chaos namespace) and whose ``reason`` says it is for fault injection
  ("fault injection", "fault-injection" or "injects faults");
* a key that is itself about fault injection (its name mentions ``chaos`` or ``faultInjection``, e.g. the
  switch of the rule that refuses Chaos Mesh resources), which may differ from prod's.

Anything else (a waiver for another workload, a weaker level, a missing prod waiver, another registry) is
reported with its path.
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from policies.config import load_config_file, stack_config_path

FAULT_INJECTION_KEYS = ("chaos", "faultinjection")
FAULT_INJECTION_REASON = re.compile(r"fault[- ]injection|inject(s|ing)? faults", re.IGNORECASE)


def about_fault_injection(key: str) -> bool:
    return any(word in key.lower().replace("-", "").replace("_", "") for word in FAULT_INJECTION_KEYS)


def is_fault_injection_waiver(entry: Any) -> bool:
    return (isinstance(entry, dict) and "chaos" in str(entry.get("resource", "")).lower()
            and FAULT_INJECTION_REASON.search(str(entry.get("reason", ""))) is not None)


def drift(prod: Any, staging: Any, path: str = "") -> list[str]:
    """Every way ``staging`` is not prod's configuration plus the allowed fault-injection exception."""
    where = path or "(top)"
    if isinstance(prod, dict) and isinstance(staging, dict):
        problems = []
        for key in sorted(set(prod) | set(staging)):
            here = f"{path}.{key}" if path else key
            if about_fault_injection(key):
                continue
            if key not in staging:
                problems.append(f"{here}: prod sets it, staging does not")
            elif key not in prod:
                problems.append(f"{here}: staging only ({json.dumps(staging[key])[:120]})")
            else:
                problems += drift(prod[key], staging[key], here)
        return problems
    if isinstance(prod, list) and isinstance(staging, list):
        waivers = path.rsplit(".", 1)[-1] == "allowedWaivers"
        missing = [item for item in prod if item not in staging]
        extra = [item for item in staging if item not in prod]
        return ([f"{where}: prod's {json.dumps(item)[:160]} is missing in staging" for item in missing]
                + [f"{where}: staging only {json.dumps(item)[:160]}" for item in extra
                   if not (waivers and is_fault_injection_waiver(item))])
    if prod != staging:
        return [f"{where}: prod {json.dumps(prod)}, staging {json.dumps(staging)}"]
    return []


@pytest.fixture(scope="module")
def configs() -> tuple[dict, dict]:
    return load_config_file(stack_config_path("prod")), load_config_file(stack_config_path("staging"))


def test_staging_is_prods_policy_configuration(configs):
    prod, staging = configs
    assert drift(prod, staging) == []
    assert staging["all"] == "mandatory"


def test_a_chaos_daemon_waiver_for_fault_injection_and_the_fault_injection_switch_are_the_allowed_exception(configs):
    prod, staging = copy.deepcopy(configs[0]), copy.deepcopy(configs[1])
    staging["non-root"]["allowedWaivers"].append({
        "resource": "DaemonSet/soma-chaos/chaos-daemon", "finding": "container 'chaos-daemon': privileged must not be true",
        "reason": "Chaos Mesh's daemon enters pods' namespaces to inject faults: fault injection runs in staging only"})
    staging["no-chaos-in-prod"] = {"allowFaultInjection": True}
    prod["no-chaos-in-prod"] = {"allowFaultInjection": False}
    assert drift(prod, staging) == []


@pytest.mark.parametrize("change, reported", [
    (lambda s: s.update({"all": "advisory"}), 'all: prod "mandatory", staging "advisory"'),
    (lambda s: s["non-root"].update({"waivers": "any"}), 'non-root.waivers: prod "allow-list", staging "any"'),
    (lambda s: s["digest-pinned-images"]["allowedRegistries"].append("upstream"),
     'digest-pinned-images.allowedRegistries: staging only "upstream"'),
    (lambda s: s["no-host-access"]["allowedWaivers"].append(
        {"resource": "DaemonSet/soma-ops/agent", "finding": "volume 'root' must not use hostPath", "reason": "fault injection"}),
     "no-host-access.allowedWaivers: staging only"),
    (lambda s: s["no-host-access"]["allowedWaivers"].append(
        {"resource": "DaemonSet/soma-chaos/chaos-daemon", "finding": "volume 'root' must not use hostPath", "reason": "needed"}),
     "no-host-access.allowedWaivers: staging only"),
    (lambda s: s["no-host-access"]["allowedWaivers"].pop(0), "no-host-access.allowedWaivers: prod's"),
    (lambda s: s.pop("signed-images"), "signed-images: prod sets it, staging does not"),
])
def test_any_other_difference_is_reported_with_its_path(configs, change, reported):
    prod, staging = configs[0], copy.deepcopy(configs[1])
    change(staging)
    found = drift(prod, staging)
    assert len(found) == 1 and found[0].startswith(reported), found
