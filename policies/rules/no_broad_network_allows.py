"""no-broad-network-allows: an allow rule names whom it allows.

default-deny-network-policy proves each namespace starts from deny-all; this rule keeps the
allows that follow from quietly undoing it. A NetworkPolicy rule is too broad when it:

* has no peers (``ingress: [{}]``, or ``from``/``to`` absent or empty): every source or
  destination, inside the cluster or not;
* has a peer ``namespaceSelector: {}`` with an empty or absent ``podSelector`` and the rule
  lists no ports: every pod of every namespace, on every port;
* has an ``ipBlock`` of ``0.0.0.0/0`` or ``::/0``: the whole internet (``except`` entries do
  not make it narrow).

Selecting all namespaces is fine when the peer also selects pods by label, or when the rule
names its ports: that is a deliberate, reviewable flow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..model import Finding, ResourceView, Unresolved, Violation, dig, is_unknown
from ..rule import Rule, RuleConfig, Severity

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
DIRECTIONS = (("ingress", "from"), ("egress", "to"))
EVERYWHERE = frozenset({"0.0.0.0/0", "::/0"})


def _selects_everything(selector: Any) -> bool:
    """An absent or empty label selector selects everything."""
    return selector is None or (
        isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions")
    )


def check(resource: ResourceView, _config: RuleConfig) -> Iterator[Finding]:
    if resource.type != NETWORK_POLICY:
        return
    name = f"NetworkPolicy '{resource.namespace}/{resource.object_name}'"
    for direction, peers_key in DIRECTIONS:
        rules = dig(resource.props, "spec", direction)
        if is_unknown(rules):
            yield Unresolved(f"spec.{direction}", rules.sentinel)
            continue
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            where = f"spec.{direction}[{index}]"
            if is_unknown(rule):
                yield Unresolved(where, rule.sentinel)
                continue
            yield from _check_rule(name, where, rule if isinstance(rule, dict) else {}, peers_key)


def _check_rule(name: str, where: str, rule: dict[str, Any], peers_key: str) -> Iterator[Finding]:
    peers, ports = rule.get(peers_key), rule.get("ports")
    for value, path in ((peers, f"{where}.{peers_key}"), (ports, f"{where}.ports")):
        if is_unknown(value):
            yield Unresolved(path, value.sentinel)
            return
    if not peers:
        yield Violation(f"{name}: {where} has no {peers_key} peers, so it allows every address")
        return
    for index, peer in enumerate(peers if isinstance(peers, list) else []):
        path = f"{where}.{peers_key}[{index}]"
        if is_unknown(peer):
            yield Unresolved(path, peer.sentinel)
            continue
        cidr = dig(peer, "ipBlock", "cidr")
        if is_unknown(cidr):
            yield Unresolved(f"{path}.ipBlock.cidr", cidr.sentinel)
        elif cidr in EVERYWHERE:
            yield Violation(f"{name}: {path} allows ipBlock {cidr}, every address")
        namespaces, pods = dig(peer, "namespaceSelector"), dig(peer, "podSelector")
        if is_unknown(namespaces) or is_unknown(pods):
            unknown = namespaces if is_unknown(namespaces) else pods
            yield Unresolved(path, unknown.sentinel)
        elif namespaces is not None and _selects_everything(namespaces) and _selects_everything(pods) and not ports:
            yield Violation(
                f"{name}: {path} allows every pod of every namespace (namespaceSelector: {{}} without a "
                "podSelector) on every port"
            )


RULE = Rule(
    name="no-broad-network-allows",
    description=(
        "No NetworkPolicy rule allows everything: no rule without peers, no ipBlock 0.0.0.0/0 or "
        "::/0, and no namespaceSelector: {} without a podSelector on a rule that lists no ports."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Name the peers of each allow: select the pods by label (kit.labels.client_label(...) and "
        "a podSelector, with namespaceSelector on kubernetes.io/metadata.name), and list the "
        "ports. Egress outside the cluster names its CIDRs. A flow that truly must be open carries "
        "a reviewed waiver annotation waivers.somaagenthub.io/no-broad-network-allows: '<reason>' "
        "(prod: also listed in allowedWaivers)."
    ),
    check_resource=check,
)
