"""Reading a vendored chart's files as Helm does, without Helm: manifests, subchart switches, CRDs.

The program needs this at deploy time (it installs the CRDs of ``crds/`` folders itself, see
:mod:`components.kit.chart`) and the offline render needs it to expand charts as the provider does
(tools/chart_expansion.py); both use this one implementation.
"""
from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "build" / ".cache"
DOCUMENT_SEPARATOR = re.compile(r"(?m)^---[ \t]*(?:#.*)?$")


class _ManifestLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML 1.1 as Kubernetes reads it: a lone ``=`` is the string "=", not PyYAML's value tag."""


_ManifestLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def documents(text: str) -> list[dict[str, Any]]:
    """The objects of a manifest stream, ``List`` kinds expanded, empty documents dropped.

    The objects are shared with a per-process parse cache: callers copy before changing one.
    """
    found: list[dict[str, Any]] = []
    for chunk in DOCUMENT_SEPARATOR.split(text):
        found += _parse_document(chunk)
    return found


@functools.lru_cache(maxsize=4096)
def _parse_document(chunk: str) -> tuple[dict[str, Any], ...]:
    """One YAML document; the same text (a chart's static object, a CRD) is parsed once per process."""
    found: list[dict[str, Any]] = []
    for doc in yaml.load_all(chunk, Loader=_ManifestLoader):  # noqa: S506 - a SafeLoader subclass
        if not isinstance(doc, dict) or not doc:
            continue
        if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
            found += [i for i in doc["items"] if isinstance(i, dict)]
        else:
            found.append(doc)
    return tuple(found)


def lookup(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def coalesce(defaults: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` over a chart's ``values.yaml`` defaults, maps merged key by key (Helm's coalesce for
    the switches read here; a ``null`` value removes the default, as in Helm). Values may hold
    Pulumi Outputs, so nothing is copied deeply."""
    merged = dict(defaults)  # new maps along the merged paths only; the leaves are shared, never changed
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = coalesce(merged[key], value)
        else:
            merged[key] = value
    return merged


def enabled_subcharts(folder: Path, merged: Mapping[str, Any]) -> list[tuple[Path, Mapping[str, Any]]]:
    """The chart itself and every subchart whose condition holds, with the values it sees."""
    found = [(folder, merged)]
    meta = yaml.safe_load((folder / "Chart.yaml").read_text()) or {}
    for dep in meta.get("dependencies") or []:
        key = dep.get("alias") or dep["name"]
        enabled = True
        for path in str(dep.get("condition") or "").split(","):
            decided = lookup(merged, path.strip()) if path.strip() else None
            if isinstance(decided, bool):
                enabled = decided
                break
        sub = folder / "charts" / dep["name"]
        if enabled and (sub / "Chart.yaml").exists():
            found += enabled_subcharts(sub, merged.get(key) or {})
    return found


@functools.lru_cache(maxsize=None)
def crd_folder(crd_dir: Path) -> tuple[dict[str, Any], ...]:
    """A ``crds/`` folder's objects (large, never templated), parsed once per process and kept as
    JSON under build/.cache keyed by the files' sha256, so later runs skip the YAML parse."""
    files = sorted(p for p in crd_dir.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    texts = [path.read_bytes() for path in files]
    key = hashlib.sha256(b"\0".join(p.relative_to(crd_dir).as_posix().encode() + b"\0" + t for p, t in zip(files, texts)))
    cached = CACHE / f"crds-{key.hexdigest()}.json"
    if cached.is_file():
        return tuple(json.loads(cached.read_text()))
    found: list[dict[str, Any]] = []
    for text in texts:
        found += documents(text.decode())
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(found))
    except OSError:
        pass  # a read-only checkout runs without the cache
    return tuple(found)


def crd_documents(folder: Path, merged: Mapping[str, Any]) -> list[dict[str, Any]]:
    """CRDs from the ``crds/`` folders of the chart and its enabled subcharts, as Helm installs them
    (shared objects: copy before changing one)."""
    crds: list[dict[str, Any]] = []
    for chart_dir, _ in enabled_subcharts(folder, merged):
        if (chart_dir / "crds").is_dir():
            crds += [o for o in crd_folder(chart_dir / "crds") if o.get("kind") == "CustomResourceDefinition"]
    return crds


@functools.lru_cache(maxsize=None)
def chart_defaults(folder: Path) -> Mapping[str, Any]:
    """The chart's own ``values.yaml`` (shared: never changed), parsed by libyaml like the manifests: the
    charts' defaults are the largest YAML the render reads, and the pure-Python parser spent seconds on them."""
    path = folder / "values.yaml"
    return (yaml.load(path.read_text(), Loader=_ManifestLoader) or {}) if path.is_file() else {}  # noqa: S506 - a SafeLoader subclass


__all__ = ["coalesce", "crd_documents", "documents", "enabled_subcharts", "chart_defaults", "lookup"]
