"""The platform's decision points, as audit events in the contract (components/core/audit/schema.md).

Each function maps one record a decision point already emits to one contract event, or to ``None`` when the
record is not a decision. They are pure (no I/O, standard library only), so the same module runs in the
audit-shipper image and in the program's tools (``components.governance.compliance.events`` imports it), and
the mapping is tested by putting their JSON through the contract's own SQL (008_ingest_parse_mv.sql, in chdb:
tests/governance/test_compliance_events.py).

* Gatekeeper: the Kubernetes Events it records with ``--emit-admission-events`` (reasons ``FailedAdmission``,
  ``WarningAdmission``, ``DryrunViolation``) and ``--emit-audit-events`` (``AuditViolation``), with the
  annotations pkg/webhook/policy.go and pkg/audit/manager.go set (v3.23: ``process``, ``constraint_kind``,
  ``constraint_name``, ``constraint_action``, ``resource_kind``, ``resource_namespace``, ``resource_name``,
  ``request_username``). The constraint's name is ``soma-<template folder>``
  (components/mesh/admission/policies.py); ``rules`` (template folder -> gate rule, which the program derives
  from that module's ``RULE_TEMPLATES`` and hands to the shipper as a setting) names the gate's rule.
* OPA-Envoy (the edge): a console decision log entry (``decision_id``, ``timestamp``, ``input`` as Envoy's
  ext-authz request, ``result`` as components/mesh/edge/rego/authz.rego answers). Nothing of the request's
  headers is copied but the tenant header and the trace context: the bearer token never leaves OPA's log.
* Argo CD: the Kubernetes Events its application controller records on an Application
  (``OperationCompleted`` with "Sync operation to <revision> succeeded|failed"); a sync refused for an
  unsigned or untrusted commit is a deny.

Identity: ``event_id`` is a UUIDv5 of the record's own identity (the Event's uid and count, the decision's
id), so a record read twice maps to the same id and readers deduplicate it (``LIMIT 1 BY event_id``). None
of these records carries a W3C trace context except the edge's request; elsewhere ``trace_id`` is derived
from the event id (the contract requires one), so it groups nothing but the event itself.

The tenant is the reserved ``platform`` for cluster-level decisions (admission, audit, sync), and the
request's tenant (header ``x-soma-tenant``, when it is a DNS label) at the edge.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

NAMESPACE = uuid.UUID("6f1f5a57-0c1e-4e8e-9a57-6d0c2b1c7a31")
"""The UUIDv5 namespace of the platform's shipped audit events (fixed: changing it changes every id)."""
PLATFORM_TENANT = "platform"
DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
MAX_TEXT = 1024
MAX_ID = 256

IMAGE_RULES = {"digest-pinned-images": "image.unpinned", "signed-images": "image.unsigned"}
"""Gate rules whose findings are image attempts (the compliance dashboard's "unsigned or unpinned image" panel)."""
GATEKEEPER_REASONS = {"FailedAdmission": "deny", "WarningAdmission": "warn", "DryrunViolation": "dryrun", "AuditViolation": None}
ARGOCD_UNTRUSTED = re.compile(r"signature|gpg|untrusted|not signed", re.IGNORECASE)


def _text(value: Any, limit: int) -> str:
    """A string for the contract: control characters become spaces, cut to ``limit`` characters."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", str(value or "")).strip()
    return text[:limit]


def _identifier(value: Any) -> str:
    return _text(value, MAX_ID) or "unknown"


def _timestamp(value: Any) -> str:
    """RFC 3339 with milliseconds in UTC (``2026-11-20T10:15:30.123Z``) from what Kubernetes and OPA write."""
    text = str(value or "").replace("Z", "+00:00")
    # OPA writes nanoseconds; Python reads at most microseconds
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    moment = datetime.fromisoformat(text) if text else datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _event_id(*identity: Any) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join(str(part) for part in identity)))


def _trace_id(event_id: str, traceparent: Any = None) -> str:
    match = TRACEPARENT.match(str(traceparent or ""))
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    return hashlib.sha256(event_id.encode()).hexdigest()[:32]


def _attributes(values: Mapping[str, Any]) -> dict[str, str]:
    return {key: _text(value, MAX_TEXT) for key, value in values.items() if value not in (None, "")}


def _event(*, event_id: str, occurred_at: str, actor: tuple[str, str], tenant: str, action: str, resource: tuple[str, str],
           decision: str, reason: str, trace_id: str, source: str, attributes: Mapping[str, str]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "occurred_at": occurred_at,
        "actor": {"type": actor[0], "id": _identifier(actor[1])},
        "tenant": tenant,
        "action": action,
        "resource": {"type": resource[0], "id": _identifier(resource[1])},
        "decision": decision,
        "trace_id": trace_id,
        "source": source,
        "attributes": dict(attributes),
    }
    if reason:
        event["reason"] = _text(reason, MAX_TEXT)
    elif decision == "deny":
        event["reason"] = "denied without a stated reason"
    return event


def gate_rule(constraint_name: str, rules: Mapping[str, str]) -> str:
    """The gate's rule a Gatekeeper constraint stands for (``soma-<folder>`` looked up in ``rules``, template
    folder -> rule), or the constraint's own name when the folder is not in ``rules``."""
    return rules.get(constraint_name.removeprefix("soma-"), constraint_name)


def _actor_of(username: str) -> tuple[str, str]:
    """Kubernetes usernames: ``system:serviceaccount:<ns>:<name>`` is a service, other ``system:`` names the
    system, anything else a user."""
    if username.startswith("system:serviceaccount:"):
        return "service", username
    if username.startswith("system:") or not username:
        return "system", username or "kubernetes"
    return "user", username


def from_gatekeeper_event(event: Mapping[str, Any], rules: Mapping[str, str]) -> dict[str, Any] | None:
    """A Gatekeeper admission or audit Event (core/v1) as an audit event; None for any other Event.

    Every violation is ``decision: deny`` (the policy's verdict); ``attributes.enforcement`` says whether the
    request was refused (``deny``), let through with a warning (``warn``) or only recorded (``dryrun``,
    audit: ``audit``), so a dashboard can tell refused from would-be-refused."""
    reason = event.get("reason", "")
    if reason not in GATEKEEPER_REASONS:
        return None
    meta = event.get("metadata", {})
    notes = meta.get("annotations", {}) or {}
    if notes.get("process") not in ("admission", "audit"):
        return None
    constraint = notes.get("constraint_name", "")
    rule = gate_rule(constraint, rules)
    namespace = notes.get("resource_namespace", "")
    kind, name = notes.get("resource_kind", "") or "object", notes.get("resource_name", "")
    event_id = _event_id("gatekeeper", meta.get("uid", ""), event.get("count", 1))
    audit = notes["process"] == "audit"
    return _event(
        event_id=event_id,
        occurred_at=_timestamp(event.get("eventTime") or event.get("lastTimestamp") or meta.get("creationTimestamp")),
        actor=("system", "gatekeeper/audit") if audit else _actor_of(notes.get("request_username", "")),
        tenant=PLATFORM_TENANT,
        action="admission.audit" if audit else "admission.review",
        resource=(f"k8s.{kind.lower()}", f"{namespace}/{name}" if namespace else name),
        decision="deny",
        reason=event.get("message", ""),
        trace_id=_trace_id(event_id),
        source="gatekeeper",
        attributes=_attributes({
            "policy.engine": "gatekeeper",
            "policy.rule": rule,
            "policy.constraint": f"{notes.get('constraint_kind', '')}/{constraint}",
            "enforcement": "audit" if audit else GATEKEEPER_REASONS[reason],
            "k8s.namespace": namespace,
            "compliance.category": IMAGE_RULES.get(rule, "workload"),
        }),
    )


def _claims(authorization: str) -> Mapping[str, Any]:
    """The bearer token's claims, read without verification (Envoy's jwt_authn verified it before OPA ran);
    only ``sub`` is kept, never the token."""
    if not authorization.startswith("Bearer "):
        return {}
    parts = authorization[7:].split(".")
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, json.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def from_opa_decision(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """One OPA-Envoy console decision log entry (the edge's ext-authz answer) as an audit event."""
    if "decision_id" not in entry:
        return None
    http = (((entry.get("input") or {}).get("attributes") or {}).get("request") or {}).get("http") or {}
    headers = {str(k).lower(): v for k, v in (http.get("headers") or {}).items()}
    result = entry.get("result")
    allowed = result.get("allowed") if isinstance(result, dict) else bool(result)
    reason = ""
    route = ""
    if isinstance(result, dict):
        reason = (result.get("response_headers_to_add") or {}).get("x-soma-authz-reason", "")
        route = (result.get("headers") or {}).get("x-soma-authz-route", "")
    tenant = str(headers.get("x-soma-tenant", ""))
    subject = _claims(str(headers.get("authorization", ""))).get("sub", "")
    event_id = _event_id("opa", entry["decision_id"])
    path = str(http.get("path", "")).split("?")[0]
    return _event(
        event_id=event_id,
        occurred_at=_timestamp(entry.get("timestamp")),
        actor=("user", subject) if subject else ("system", "anonymous"),
        tenant=tenant if DNS_LABEL.match(tenant) else PLATFORM_TENANT,
        action="api.request",
        resource=("route", route or f"{str(http.get('host', '')).split(':')[0]}{path}"),
        decision="allow" if allowed else "deny",
        reason="" if allowed else reason,
        trace_id=_trace_id(event_id, headers.get("traceparent")),
        source="edge",
        attributes=_attributes({
            "policy.engine": "opa",
            "policy.rule": "edge-authz",
            "http.method": http.get("method", ""),
            "decision.id": entry["decision_id"],
            "compliance.category": "authz",
        }),
    )


def from_argocd_event(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """An Argo CD Application's ``OperationCompleted`` Event as an audit event (other Events: None)."""
    if event.get("reason") != "OperationCompleted":
        return None
    involved = event.get("involvedObject", {})
    if involved.get("kind") != "Application":
        return None
    meta = event.get("metadata", {})
    message = str(event.get("message", ""))
    untrusted = "failed" in message.lower() and bool(ARGOCD_UNTRUSTED.search(message))
    event_id = _event_id("argocd", meta.get("uid", ""), event.get("count", 1))
    return _event(
        event_id=event_id,
        occurred_at=_timestamp(event.get("eventTime") or event.get("lastTimestamp") or meta.get("creationTimestamp")),
        actor=("system", "argocd/application-controller"),
        tenant=PLATFORM_TENANT,
        action="gitops.sync",
        resource=("argocd.application", f"{involved.get('namespace', '')}/{involved.get('name', '')}"),
        decision="deny" if untrusted else "allow",
        reason=message if untrusted else "",
        trace_id=_trace_id(event_id),
        source="argocd",
        attributes=_attributes({
            "policy.engine": "argocd",
            "policy.rule": "signed-sources" if untrusted else "",
            "outcome": "failed" if "failed" in message.lower() else "succeeded",
            "k8s.namespace": involved.get("namespace", ""),
            "compliance.category": "gitops",
        }),
    )


def to_message(event: Mapping[str, Any]) -> str:
    """The Kafka message: one JSON object, compact (the key is the tenant, schema.md "Rules for producers")."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def from_event(event: Mapping[str, Any], rules: Mapping[str, str]) -> dict[str, Any] | None:
    """A Kubernetes Event (core/v1, as a list or a watch returns it: ``kind`` may be absent from watch
    objects): Gatekeeper's, Argo CD's, or None."""
    return from_gatekeeper_event(event, rules) or from_argocd_event(event)


def from_record(record: Mapping[str, Any], rules: Mapping[str, str]) -> dict[str, Any] | None:
    """Whichever mapping fits the record: an OPA decision, a Gatekeeper Event, an Argo CD Event, or None."""
    if "decision_id" in record:
        return from_opa_decision(record)
    if record.get("kind") == "Event":
        return from_event(record, rules)
    return None


def main(lines, out, rules: Mapping[str, str]) -> int:
    """Records in (JSON lines, or one ``kubectl get events -o json`` list), ``<tenant>\\t<event JSON>`` lines
    out: the input kafka-console-producer takes with ``--property parse.key=true`` (key = tenant, as the
    contract asks). For backfilling by hand (``python -m components.governance.compliance.events``, which
    passes the gate's rules; docs/runbooks/governance.md)."""
    text = "".join(lines)
    stripped = text.strip()
    if stripped.startswith("{") and '"items"' in stripped[:2000] and "\n{" not in stripped:
        records = json.loads(stripped).get("items", [])
    else:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    written = 0
    for record in records:
        event = from_record(record, rules)
        if event is not None:
            out.write(f"{event['tenant']}\t{to_message(event)}\n")
            written += 1
    return written
