"""The hardening baseline: one rule per module, listed here once for both drivers."""

from __future__ import annotations

from ..rule import Rule
from . import (
    default_deny,
    least_privilege_rbac,
    namespace_pod_security,
    no_broad_network_allows,
    no_fault_injection,
    no_host_access,
    no_plaintext_secrets,
    no_public_services,
    non_root,
    pinned_charts,
    read_only_root,
    resource_limits,
    digest_pinned_images,
    signed_images,
)

RULES: tuple[Rule, ...] = (
    digest_pinned_images.RULE,
    non_root.RULE,
    resource_limits.RULE,
    read_only_root.RULE,
    no_host_access.RULE,
    pinned_charts.RULE,
    no_plaintext_secrets.RULE,
    namespace_pod_security.RULE,
    no_public_services.RULE,
    no_broad_network_allows.RULE,
    least_privilege_rbac.RULE,
    default_deny.RULE,
    signed_images.RULE,
    no_fault_injection.RULE,
)
RULES_BY_NAME: dict[str, Rule] = {rule.name: rule for rule in RULES}
