"""Validate rendered objects the way an API server would: OpenAPI for built-ins, CRD schemas for the rest."""
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


def validate(obj: dict, kubernetes_version: str) -> list[str]:
    """Problems with ``obj`` (empty when valid); raises :class:`NoSchema` when nothing can judge it."""
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
    pattern = DNS_1123_LABEL if obj["kind"] in LABEL_NAMED_KINDS else DNS_1123_SUBDOMAIN
    if not pattern.match(name):
        return f"{obj['kind']} name {name!r} is not a valid DNS-1123 {'label' if pattern is DNS_1123_LABEL else 'subdomain'}"
    return None
