"""Who may do what, from the RBAC objects of a rendered plan: ``kubectl auth can-i``, offline.

    python -m tools.rbac_review --stack prod --as soma-data/clickhouse
    python -m tools.rbac_review --stack prod --as soma-data/clickhouse --can create external-secrets.io/externalsecrets

Kubernetes authorises a request when any rule of any role bound to the subject matches it; this
module evaluates exactly that over the plan's Roles, ClusterRoles (aggregation included),
RoleBindings and ClusterRoleBindings, for service accounts and the groups they belong to
(``system:serviceaccounts``, ``system:serviceaccounts:<namespace>``, ``system:authenticated``).

Two limits, said where they matter: the built-in roles (``view``, ``edit``, ``admin``,
``cluster-admin``) are not in the plan, so for them only what aggregates into them from the plan
is known (which is what the platform adds to every namespace's editors); and roles that
operators create at run time (CloudNativePG's per-instance Role) are not in the plan either.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Iterable, Iterator

AGGREGATED_BUILTINS = {
    "view": "rbac.authorization.k8s.io/aggregate-to-view",
    "edit": "rbac.authorization.k8s.io/aggregate-to-edit",
    "admin": "rbac.authorization.k8s.io/aggregate-to-admin",
}


@dataclass(frozen=True)
class Subject:
    """A service account (``namespace``/``name``) or, for the built-in roles, a holder of one."""

    namespace: str
    name: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> frozenset[str]:
        return frozenset({"system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"})

    @classmethod
    def parse(cls, text: str) -> "Subject":
        namespace, sep, name = text.partition("/")
        if not sep or not namespace or not name:
            raise ValueError(f"--as {text!r}: expected <namespace>/<service account>")
        return cls(namespace, name)


def _objects(plan: dict, kind: str) -> list[dict]:
    return [r["inputs"] for r in plan["resources"] if r["inputs"].get("kind") == kind
            and r["inputs"].get("apiVersion") == "rbac.authorization.k8s.io/v1"]


def _matches_selector(labels: dict, selector: dict) -> bool:
    wanted = selector.get("matchLabels") or {}
    return bool(wanted) and all(str(labels.get(k)) == str(v) for k, v in wanted.items())


def cluster_role_rules(plan: dict) -> dict[str, list[dict]]:
    """Every ClusterRole's effective rules, aggregation resolved (the aggregator's own rules are
    replaced by the union of those it selects, as the controller does)."""
    roles = {r["metadata"]["name"]: r for r in _objects(plan, "ClusterRole")}
    rules: dict[str, list[dict]] = {}
    for name, role in roles.items():
        selectors = (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        if selectors:
            rules[name] = [rule for other in roles.values() if other is not role
                           for s in selectors if _matches_selector((other.get("metadata") or {}).get("labels") or {}, s)
                           for rule in other.get("rules") or []]
        else:
            rules[name] = list(role.get("rules") or [])
    for builtin, label in AGGREGATED_BUILTINS.items():
        rules.setdefault(builtin, [rule for other in roles.values()
                                   if str(((other.get("metadata") or {}).get("labels") or {}).get(label)).lower() == "true"
                                   for rule in other.get("rules") or []])
    return rules


def _bound(subjects: Iterable[dict], who: Subject, binding_namespace: str | None) -> bool:
    for s in subjects or []:
        kind = s.get("kind")
        if kind == "ServiceAccount" and s.get("name") == who.name and (s.get("namespace") or binding_namespace) == who.namespace:
            return True
        if kind == "User" and s.get("name") == who.user:
            return True
        if kind == "Group" and s.get("name") in who.groups:
            return True
    return False


@dataclass(frozen=True)
class Grant:
    """One rule bound to the subject, and where it applies (``None``: every namespace)."""

    rule: dict
    namespace: str | None
    via: str


def grants(plan: dict, who: Subject, builtin: str | None = None) -> list[Grant]:
    """Every rule the subject holds; with ``builtin`` (view/edit/admin), the subject also holds that
    built-in role in its own namespace (what a team member with ``edit`` there would have)."""
    cluster = cluster_role_rules(plan)
    roles = {(r["metadata"].get("namespace"), r["metadata"]["name"]): r.get("rules") or [] for r in _objects(plan, "Role")}
    found: list[Grant] = []
    for binding in _objects(plan, "ClusterRoleBinding"):
        if _bound(binding.get("subjects"), who, None) and binding["roleRef"]["kind"] == "ClusterRole":
            name = binding["roleRef"]["name"]
            found += [Grant(rule, None, f"ClusterRoleBinding/{binding['metadata']['name']}") for rule in cluster.get(name, [])]
    for binding in _objects(plan, "RoleBinding"):
        ns = binding["metadata"].get("namespace")
        if not _bound(binding.get("subjects"), who, ns):
            continue
        ref = binding["roleRef"]
        rules = cluster.get(ref["name"], []) if ref["kind"] == "ClusterRole" else roles.get((ns, ref["name"]), [])
        found += [Grant(rule, ns, f"RoleBinding/{ns}/{binding['metadata']['name']}") for rule in rules]
    if builtin:
        found += [Grant(rule, who.namespace, f"built-in {builtin} in {who.namespace}") for rule in cluster.get(builtin, [])]
    return found


def _allows(rule: dict, verb: str, group: str, resource: str, name: str | None) -> bool:
    if rule.get("nonResourceURLs"):
        return False
    verbs, groups, resources = (rule.get(k) or [] for k in ("verbs", "apiGroups", "resources"))
    names = rule.get("resourceNames") or []
    return ((verb in verbs or "*" in verbs) and (group in groups or "*" in groups)
            and (resource in resources or "*" in resources) and (not names or (name is not None and name in names)))


def can(plan: dict, who: Subject, verb: str, group: str, resource: str, namespace: str,
        name: str | None = None, builtin: str | None = None) -> list[Grant]:
    """The grants that allow the request (empty: refused). ``group`` is ``""`` for the core API."""
    return [g for g in grants(plan, who, builtin)
            if (g.namespace is None or g.namespace == namespace) and _allows(g.rule, verb, group, resource, name)]


def service_accounts(plan: dict, namespace: str) -> list[Subject]:
    return sorted({Subject(namespace, r["inputs"]["metadata"]["name"]) for r in plan["resources"]
                   if r["inputs"].get("kind") == "ServiceAccount" and r["inputs"]["metadata"].get("namespace") == namespace},
                  key=lambda s: s.name)


def describe(plan: dict, who: Subject) -> Iterator[str]:
    for g in grants(plan, who):
        rule = g.rule
        where = g.namespace or "cluster-wide"
        what = ", ".join(f"{grp or 'core'}/{res}" for grp in rule.get("apiGroups") or [""] for res in rule.get("resources") or [])
        names = f" named {', '.join(rule['resourceNames'])}" if rule.get("resourceNames") else ""
        yield f"{where:<20} {','.join(rule.get('verbs') or []):<40} {what}{names}  ({g.via})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--as", dest="subject", required=True, help="<namespace>/<service account>")
    parser.add_argument("--can", nargs=2, metavar=("VERB", "GROUP/RESOURCE"), help="e.g. create external-secrets.io/externalsecrets")
    parser.add_argument("--namespace", help="where the --can request goes (default: the subject's)")
    args = parser.parse_args(argv)
    from tools.render import RenderError, render

    try:
        who = Subject.parse(args.subject)
        plan = render(args.stack)
    except (ValueError, RenderError) as err:
        print(f"rbac-review: {err}", file=sys.stderr)
        return 2
    if args.can:
        verb, target = args.can
        group, _, resource = target.rpartition("/")
        allowed = can(plan, who, verb, group, resource, args.namespace or who.namespace)
        print("yes" if allowed else "no")
        for g in allowed:
            print(f"  via {g.via}")
        return 0 if allowed else 1
    lines = list(describe(plan, who))
    print("\n".join(lines) if lines else f"{who.user} holds no role in stack {args.stack}")
    return 0


__all__ = ["Subject", "can", "cluster_role_rules", "grants", "service_accounts"]

if __name__ == "__main__":
    sys.exit(main())
