"""least-privilege-rbac: no Role or ClusterRole grants everything, privilege escalation, or the power
to read credentials' neighbours and rewrite the cluster's own controls; no binding hands out an
admin role.

RBAC is where an operator chart quietly takes the cluster: ``*`` on every resource, write access to
every Secret, to webhooks (which see every request) or to RBAC itself (which grants everything
else). Operators do need some of it; each such grant is listed by name, with its reason, in the
stack's allow list (an entry naming the role and the grant it excuses), and the report counts it.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Finding, ResourceView, Unresolved, Violation, dig, is_unknown
from ..rule import Rule, RuleConfig, Severity

ROLE_TYPES = frozenset({"kubernetes:rbac.authorization.k8s.io/v1:Role", "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"})
BINDING_TYPES = frozenset({"kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                           "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"})
ESCALATING_VERBS = ("escalate", "bind", "impersonate")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection", "*"})
GUARDED_RESOURCES = {
    "secrets": "secrets",
    "mutatingwebhookconfigurations": "webhooks",
    "validatingwebhookconfigurations": "webhooks",
    "roles": "RBAC",
    "clusterroles": "RBAC",
    "rolebindings": "RBAC",
    "clusterrolebindings": "RBAC",
    # whoever writes an ExternalSecret or a store reads what the stores it names can read
    "externalsecrets": "secret sync",
    "clusterexternalsecrets": "secret sync",
    "secretstores": "secret sync",
    "clustersecretstores": "secret sync",
    "pushsecrets": "secret sync",
    "clusterpushsecrets": "secret sync",
}
AGGREGATION_LABELS = ("rbac.authorization.k8s.io/aggregate-to-edit", "rbac.authorization.k8s.io/aggregate-to-admin")
ADMIN_ROLES = frozenset({"cluster-admin", "admin", "edit"})


def _names(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def grants(rule: dict, index: int) -> Iterator[str]:
    """What one PolicyRule grants that needs a reason, as 'grants ...' phrases."""
    verbs, resources, groups = (_names(rule.get(key)) for key in ("verbs", "resources", "apiGroups"))
    for what, values in (("verbs", verbs), ("resources", resources), ("API groups", groups)):
        if "*" in values:
            yield f"rules[{index}] grants * {what}"
    for verb in ESCALATING_VERBS:
        if verb in verbs:
            yield f"rules[{index}] grants {verb}"
    if WRITE_VERBS & set(verbs):
        for kind in sorted({GUARDED_RESOURCES[r] for r in resources if r in GUARDED_RESOURCES}):
            yield f"rules[{index}] grants write on {kind}"


def check(resource: ResourceView, config: RuleConfig) -> Iterator[Finding]:
    if resource.type in ROLE_TYPES:
        rules = resource.props.get("rules")
        if is_unknown(rules):
            yield Unresolved("rules", rules.sentinel)
            return
        labels = dig(resource.props, "metadata", "labels")
        aggregated = [label.rsplit("-", 1)[-1] for label in AGGREGATION_LABELS
                      if isinstance(labels, dict) and str(labels.get(label)).lower() == "true"]
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            if is_unknown(rule) or not isinstance(rule, dict):
                yield Unresolved(f"rules[{index}]", getattr(rule, "sentinel", "unknown"))
                continue
            for grant in grants(rule, index):
                yield Violation(f"{resource.kind} '{resource.object_name}' {grant}")
                if aggregated and "grants write" in grant:
                    yield Violation(f"{resource.kind} '{resource.object_name}' adds {grant.split('grants ', 1)[1]} "
                                    f"to every namespace's built-in {' and '.join(aggregated)} role")
    elif resource.type in BINDING_TYPES:
        role = dig(resource.props, "roleRef", "name")
        if is_unknown(role):
            yield Unresolved("roleRef.name", role.sentinel)
        elif role in ADMIN_ROLES and dig(resource.props, "roleRef", "kind") == "ClusterRole":
            yield Violation(f"{resource.kind} '{resource.object_name}' binds the built-in '{role}' ClusterRole")


RULE = Rule(
    name="least-privilege-rbac",
    description=(
        "No Role or ClusterRole grants * verbs, resources or API groups, escalate, bind or impersonate, or "
        "write access (create, update, patch, delete) to secrets, admission webhooks, RBAC objects or secret "
        "sync objects (ExternalSecrets and stores), nor aggregates such write access into the built-in edit or "
        "admin roles; no "
        "binding to the built-in cluster-admin, admin or edit ClusterRoles. Chart-rendered RBAC included."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Grant the verbs and resources the workload uses, by name. An operator that truly needs more lists "
        "each grant in the stack's allow list: {\"resource\": \"ClusterRole/<name>\", \"finding\": \"grants write "
        "on secrets\", \"reason\": \"...\"} under least-privilege-rbac.allowedWaivers in policies/config/<stack>.json."
    ),
    check_resource=check,
)
