"""The platform's decision points as audit events: the mapping of the audit shipper (apps/audit-shipper,
``soma_audit_shipper.mapping``), with the gate's rules filled in from the admission policies.

The mapping itself lives in the shipper's package, so the image that runs it in the cluster and the tests and
tools here run one copy; what only the program knows (which gate rule each Gatekeeper constraint stands for,
``RULE_TEMPLATES``) is passed in here, and handed to the shipper as its ``constraint_rules`` setting.
``python -m components.governance.compliance.events`` maps records by hand (backfill: docs/runbooks/governance.md).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping

_SHIPPER = Path(__file__).resolve().parents[3] / "apps" / "audit-shipper" / "src"
if str(_SHIPPER) not in sys.path:  # the shipper's package, not installed in the program's environment
    sys.path.insert(0, str(_SHIPPER))

from soma_audit_shipper import mapping  # noqa: E402
from soma_audit_shipper.mapping import from_argocd_event, from_opa_decision, to_message  # noqa: E402

__all__ = ["constraint_rules", "gate_rule", "from_gatekeeper_event", "from_opa_decision", "from_argocd_event",
           "from_record", "to_message", "main"]


def constraint_rules() -> dict[str, str]:
    """Template folder -> gate rule (``soma-imagedigests`` -> ``digest-pinned-images``), from the admission
    policies' ``RULE_TEMPLATES``: the value of the shipper's ``SOMA_CONSTRAINT_RULES``."""
    from components.mesh.admission.policies import RULE_TEMPLATES

    rules: dict[str, str] = {}
    for rule, uses in RULE_TEMPLATES.items():
        for use in uses:
            rules.setdefault(use.folder, rule)
    return rules


def gate_rule(constraint_name: str) -> str:
    return mapping.gate_rule(constraint_name, constraint_rules())


def from_gatekeeper_event(event: Mapping[str, Any]) -> dict[str, Any] | None:
    return mapping.from_gatekeeper_event(event, constraint_rules())


def from_record(record: Mapping[str, Any]) -> dict[str, Any] | None:
    return mapping.from_record(record, constraint_rules())


def main(lines, out) -> int:
    return mapping.main(lines, out, constraint_rules())


if __name__ == "__main__":
    main(sys.stdin, sys.stdout)
