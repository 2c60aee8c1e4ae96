"""Validate rendered objects the way an API server would: OpenAPI for built-ins, CRD schemas for the rest.

A custom resource is judged by the CRD the plan itself installs (the chart's or the kit's, at the
pinned version), its openAPIV3Schema read as a structural schema with strict field validation:
unknown fields are refused unless ``x-kubernetes-preserve-unknown-fields`` says otherwise, and
``x-kubernetes-int-or-string`` and ``nullable`` widen the type as the API server does.
``../shared/schemas/crds`` is used only for kinds whose CRD the platform does not install.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError

ROOT = Path(__file__).resolve().parent.parent
CRD_SCHEMAS = ROOT.parent / "shared" / "schemas" / "crds"
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_1123_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAMED_KINDS = {"Namespace", "Service"}
RBAC_KINDS = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
"""Named as path segments, not DNS names: ``ValidateRBACName`` is ``path.IsValidPathSegmentName`` (kubernetes
pkg/apis/rbac/validation/validation.go): anything but ``.``, ``..``, ``/`` and ``%``, so ``system:`` style
colons (cert-manager's ``cert-manager-webhook:dynamic-serving``) are valid."""


class NoSchema(LookupError):
    """Neither the Kubernetes OpenAPI nor ../shared/schemas/crds knows this kind."""


def crd_schema_path(api_version: str, kind: str) -> Path | None:
    if "/" not in api_version:
        return None
    group, version = api_version.split("/", 1)
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    return path if path.exists() else None


@lru_cache(maxsize=None)
def _crd_validator(path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text())
    return jsonschema.Draft7Validator(schema)


ROOT_FIELDS = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}


def structural_to_json_schema(node: dict, at_root: bool = False) -> dict:
    """A CRD's openAPIV3Schema as JSON Schema with the API server's strict field validation."""
    if not isinstance(node, dict):
        return node
    out = {k: v for k, v in node.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    for key in ("properties", "patternProperties"):
        if isinstance(node.get(key), dict):
            out[key] = {name: structural_to_json_schema(sub) for name, sub in node[key].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = structural_to_json_schema(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = structural_to_json_schema(node["additionalProperties"])
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            out[key] = [structural_to_json_schema(sub) for sub in node[key]]
    if isinstance(node.get("not"), dict):
        out["not"] = structural_to_json_schema(node["not"])
    if at_root or node.get("x-kubernetes-embedded-resource"):
        out["properties"] = {**ROOT_FIELDS, **out.get("properties", {})}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}] if "anyOf" not in out else out["anyOf"]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields")
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in node and not preserve:
        out["additionalProperties"] = False
    return out


def installed_crd_validators(plan_objects: list[dict]) -> dict[tuple[str, str, str], jsonschema.protocols.Validator]:
    """(group, version, kind) -> validator, for every CRD the plan installs."""
    found = {}
    for crd in plan_objects:
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema and version.get("served", True):
                found[(spec["group"], version["name"], spec["names"]["kind"])] = jsonschema.Draft7Validator(
                    structural_to_json_schema(schema, at_root=True))
    for template in plan_objects:
        if template.get("kind") == "ConstraintTemplate" and template.get("apiVersion", "").startswith("templates.gatekeeper.sh/"):
            schema = constraint_crd_schema(template["spec"])
            for version in CONSTRAINT_VERSIONS:
                found[("constraints.gatekeeper.sh", version, template["spec"]["crd"]["spec"]["names"]["kind"])] = \
                    jsonschema.Draft7Validator(structural_to_json_schema(schema, at_root=True))
    return found


CONSTRAINT_VERSIONS = ("v1", "v1beta1", "v1alpha1")
"""The versions Gatekeeper serves a constraint kind at (its constraint CRDs)."""
CONSTRAINT_MATCH_FIELDS = ("kinds", "scope", "namespaces", "excludedNamespaces", "labelSelector", "namespaceSelector",
                           "name", "source")


def constraint_crd_schema(template_spec: dict) -> dict:
    """The CRD Gatekeeper generates for a ConstraintTemplate (run time, so not in the plan): ``spec.parameters``
    is the template's ``spec.crd.spec.validation.openAPIV3Schema``; ``spec.enforcementAction`` a string;
    ``spec.match`` Gatekeeper's match (its fields named, their insides left to Gatekeeper)."""
    parameters = ((template_spec.get("crd") or {}).get("spec") or {}).get("validation", {}).get("openAPIV3Schema") or {}
    parameters = {"type": "object", **parameters}
    match = {"type": "object", "properties": {f: {"x-kubernetes-preserve-unknown-fields": True} for f in CONSTRAINT_MATCH_FIELDS}}
    return {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "enforcementAction": {"type": "string"}, "match": match, "parameters": parameters}},
    }}


MASKED = "[secret]"


def validate(obj: dict, kubernetes_version: str, installed: dict | None = None) -> list[str]:
    """Problems with ``obj`` (empty when valid); raises :class:`NoSchema` when nothing can judge it.

    ``installed`` are the validators of the CRDs the plan installs (:func:`installed_crd_validators`);
    they take precedence over ``../shared/schemas/crds``.
    """
    if obj["kind"] == "Secret" and obj["apiVersion"] == "v1":
        # the plan masks a Secret's data ("[secret]"); the rest of the object is judged here, and a test that
        # needs the data renders the chart again (tests/core/test_observability_ha.py, Alertmanager's Secret)
        obj = {k: v for k, v in obj.items() if not (k in ("data", "stringData") and v == MASKED)}
    group, _, version = obj["apiVersion"].rpartition("/")
    validator = (installed or {}).get((group, version, obj["kind"]))
    if validator is not None:
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)]
    schema_path = crd_schema_path(obj["apiVersion"], obj["kind"])
    if schema_path is not None:
        validator = _crd_validator(schema_path)
        return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, f"{kubernetes_version}.0", strict=True)
    except SchemaNotFoundError as err:
        raise NoSchema(f"{obj['apiVersion']}/{obj['kind']}") from err
    except kubernetes_validate.ValidationError as err:
        return [f"{'/'.join(map(str, err.path)) or '(root)'}: {err.message}"]
    return []


def name_problem(obj: dict) -> str | None:
    name = (obj.get("metadata") or {}).get("name", "")
    if obj["kind"] in RBAC_KINDS:
        if not name or name in (".", "..") or "/" in name or "%" in name:
            return f"{obj['kind']} name {name!r} is not a valid path segment name"
        return None
    pattern = DNS_1123_LABEL if obj["kind"] in LABEL_NAMED_KINDS else DNS_1123_SUBDOMAIN
    if not pattern.match(name):
        return f"{obj['kind']} name {name!r} is not a valid DNS-1123 {'label' if pattern is DNS_1123_LABEL else 'subdomain'}"
    return None
