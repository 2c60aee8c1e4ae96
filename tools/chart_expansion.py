"""Expand each ``helm.v4.Chart`` of a recording into the children the engine would register.

Under Pulumi's mocks a ``helm.v4.Chart`` is a remote component with no children; under the
engine the pulumi-kubernetes provider runs ``helm template`` and registers every object. This
module does what that provider does (pulumi-kubernetes v4.32.0, provider/pkg/provider/helm/v4/chart.go
and provider/pkg/provider/yaml/v2/yaml.go; the rules are cited in docs/architecture/contracts.md):

* render with hooks disabled and only the release manifest kept: hook objects are never
  registered; CRDs from the ``crds/`` folders of the chart and its enabled subcharts come first
  unless ``skipCrds``;
* expand ``List`` objects, give namespaced objects without a namespace the chart's namespace;
* name each child ``<chart resource name>:<namespace>/<name>`` (cluster-scoped: ``<prefix>:<name>``)
  with the type token ``kubernetes:<group or core>/<version>:<Kind>``, parented to the chart;
* order them as cli-utils' dependency graph does (a CRD before its custom resources, a Namespace
  before what lives in it, ``config.kubernetes.io/depends-on``) and record those edges;
* mark ``v1/Secret`` data secret, and ``helm.sh/resource-policy: keep`` as retainOnDelete;
* give each child the chart's ``protect`` (children inherit it from their parent).
"""
from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml
from pulumi.runtime.rpc import UNKNOWN, _special_secret_sig, _special_sig_key

from components.kit.chart_files import CACHE, crd_documents, documents  # noqa: F401  (CACHE: bench_render)
from tools import helm_engine
from tools.chart_values import ignored_value_keys
from tools.mock_runtime import Registration

ROOT = Path(__file__).resolve().parent.parent
CHART_TYPE = "kubernetes:helm.sh/v4:Chart"
HOOK = "helm.sh/hook"
RESOURCE_POLICY = "helm.sh/resource-policy"
DEPENDS_ON = "config.kubernetes.io/depends-on"
SECRET_MASK = "[secret]"

# Kinds the API server keeps at cluster scope (everything else built in is namespaced).
CLUSTER_SCOPED = {
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "StorageClass", "VolumeAttachment", "CSIDriver", "CSINode", "PriorityClass", "RuntimeClass", "IngressClass",
    "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding", "CertificateSigningRequest", "FlowSchema", "PriorityLevelConfiguration",
    "ComponentStatus", "IPAddress", "ServiceCIDR", "DeviceClass", "VolumeAttributesClass",
}


class ChartRenderError(RuntimeError):
    """A chart failed to render, or rendered with a warning about our values."""


@dataclass
class ChartReport:
    """What one chart expanded into, for the render summary."""

    name: str
    chart: str
    version: str
    objects: int = 0
    pods: int = 0
    crds: int = 0
    hooks_dropped: list[str] = field(default_factory=list)


def type_token(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{kind}"


def unwrap(value: Any, secrets: set[str]) -> Any:
    """Wire values to what Helm receives: secrets unwrapped (and remembered), floats as ints."""
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            inner = unwrap(value.get("value"), secrets)
            if isinstance(inner, str) and inner:
                secrets.add(inner)
            return inner
        return {k: unwrap(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v, secrets) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == UNKNOWN:
        raise ChartRenderError("a chart value is unknown at render time; Helm would render an incomplete preview")
    return value


def mask(value: Any, secrets: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    if isinstance(value, str) and any(s in value for s in secrets):
        return SECRET_MASK
    return value


def api_versions_of(crds: Iterable[Mapping[str, Any]]) -> set[str]:
    """``group/version`` and ``group/version/Kind`` for each served version, as discovery lists them."""
    found: set[str] = set()
    for crd in crds:
        spec = crd.get("spec") or {}
        group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
        for version in spec.get("versions") or []:
            if group and kind and version.get("served", True):
                found |= {f"{group}/{version['name']}", f"{group}/{version['name']}/{kind}"}
    return found


def namespaced(obj: Mapping[str, Any], crd_scopes: Mapping[tuple[str, str], str]) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    scope = crd_scopes.get((group, obj["kind"]))
    if scope is not None:
        return scope == "Namespaced"
    return obj["kind"] not in CLUSTER_SCOPED


def _identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return obj["apiVersion"].rpartition("/")[0], obj["kind"], meta.get("namespace") or "", meta["name"]


def dependency_edges(objs: list[dict[str, Any]]) -> dict[int, set[int]]:
    """cli-utils' graph: CRD before its resources, Namespace before its contents, depends-on annotations."""
    by_identity = {_identity(o): i for i, o in enumerate(objs)}
    crd_for: dict[tuple[str, str], int] = {}
    namespace_at: dict[str, int] = {}
    for i, o in enumerate(objs):
        if o["kind"] == "CustomResourceDefinition":
            spec = o.get("spec") or {}
            crd_for[(spec.get("group", ""), (spec.get("names") or {}).get("kind", ""))] = i
        if o["kind"] == "Namespace" and o["apiVersion"] == "v1":
            namespace_at[o["metadata"]["name"]] = i
    edges: dict[int, set[int]] = {i: set() for i in range(len(objs))}
    for i, o in enumerate(objs):
        group, kind, ns, _ = _identity(o)
        if (group, kind) in crd_for:
            edges[i].add(crd_for[(group, kind)])
        if ns and ns in namespace_at:
            edges[i].add(namespace_at[ns])
        for ref in str(((o.get("metadata") or {}).get("annotations") or {}).get(DEPENDS_ON, "")).split(","):
            parts = ref.strip().split("/")
            if len(parts) == 5 and parts[1] == "namespaces":
                target = (parts[0], parts[3], parts[2], parts[4])
            elif len(parts) == 3:
                target = (parts[0], parts[1], "", parts[2])
            else:
                continue
            if target in by_identity:
                edges[i].add(by_identity[target])
        edges[i].discard(i)
    return edges


POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}


@dataclass
class ChartRequest:
    """One registered ``helm.v4.Chart``, as the provider reads its inputs."""

    urn: str
    resource_name: str
    release: str
    namespace: str
    folder: Path
    values: dict[str, Any]
    skip_crds: bool
    prefix: str
    secrets: set[str]
    protect: bool = False
    """Children inherit the chart's protect, as every child inherits it from its parent."""

    @classmethod
    def of(cls, reg: Registration) -> "ChartRequest":
        inputs = reg.inputs
        secrets: set[str] = set()
        values = unwrap(inputs.get("values") or {}, secrets)
        chart = str(inputs.get("chart", ""))
        folder = (ROOT / chart).resolve()
        if not (folder / "Chart.yaml").is_file():
            raise ChartRenderError(f"chart {reg.name}: {chart!r} is not a vendored chart folder (charts/<key>)")
        return cls(urn=reg.urn, resource_name=reg.name, release=str(inputs.get("name") or reg.name),
                   namespace=str(inputs.get("namespace") or "default"), folder=folder, values=values,
                   skip_crds=bool(inputs.get("skipCrds", False)), prefix=str(inputs.get("resourcePrefix") or reg.name),
                   secrets=secrets, protect=bool(reg.options.get("protect")))


def render_text(req: ChartRequest, kube_version: str, api_versions: Iterable[str]) -> dict[str, str]:
    """Helm's raw output (template path -> text); a failure or a warning about our values raises."""
    return dict(_render_text(req.folder, json.dumps(req.values, sort_keys=True), req.release, req.namespace,
                             req.resource_name, kube_version, tuple(sorted(api_versions))))


@functools.lru_cache(maxsize=512)
def _render_text(folder: Path, values_json: str, release: str, namespace: str, resource_name: str,
                 kube_version: str, api_versions: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Rendering is a pure function of these; one process (a test session) renders each case once.
    Vendored folders never change while a process runs (pinned-charts and the tests check their bytes)."""
    meta = yaml.safe_load((folder / "Chart.yaml").read_text()) or {}
    try:
        rendered = helm_engine.template(folder, json.loads(values_json), release=release, namespace=namespace,
                                        kube_version=kube_version, api_versions=api_versions)
    except helm_engine.HelmTemplateError as err:
        raise ChartRenderError(f"chart {resource_name} ({meta.get('name')} {meta.get('version')}) failed to render: {err}") from err
    if rendered.warnings:
        raise ChartRenderError(f"chart {resource_name} ({meta.get('name')} {meta.get('version')}) rendered with "
                               f"warnings about our values: " + "; ".join(rendered.warnings))
    return tuple((path, text) for path, text in sorted(rendered.manifests.items()) if _is_manifest(path))


def _is_manifest(path: str) -> bool:
    return path.endswith((".yaml", ".yml", ".json", ".tpl")) and ("/templates/" in path or path == "(stdout)")


@functools.lru_cache(maxsize=None)
def may_template_crds(folder: Path) -> bool:
    """Whether any template of the chart or its subcharts mentions a CRD (else the first pass can skip it)."""
    return any("CustomResourceDefinition" in path.read_text(errors="replace")
               for path in folder.rglob("*") if path.is_file() and "templates" in path.parts)


def templated_crds(manifests: Mapping[str, str]) -> list[dict[str, Any]]:
    """The CRDs among rendered templates, parsing only the documents that can be one."""
    crds = []
    for text in manifests.values():
        for chunk in text.split("\n---"):
            if "CustomResourceDefinition" in chunk:
                crds += [o for o in documents(chunk) if o.get("kind") == "CustomResourceDefinition"]
    return crds


def render_objects(req: ChartRequest, kube_version: str, api_versions: Iterable[str]) -> tuple[list[dict], list[str], ChartReport]:
    """Helm's output for one chart as the provider keeps it: (objects, dropped hooks, report)."""
    meta = yaml.safe_load((req.folder / "Chart.yaml").read_text()) or {}
    manifests = render_text(req, kube_version, api_versions)
    objects: list[dict] = []
    hooks: list[str] = []
    for _, text in sorted(manifests.items()):
        for obj in documents(text):
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            if HOOK in annotations:
                hooks.append(f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')} ({annotations[HOOK]})")
                continue
            objects.append(obj)
    crds = [] if req.skip_crds else crd_documents(req.folder, helm_engine.chart_defaults(req.folder, req.values))
    report = ChartReport(name=req.resource_name, chart=str(meta.get("name")), version=str(meta.get("version")),
                         crds=len(crds) + sum(o.get("kind") == "CustomResourceDefinition" for o in objects),
                         hooks_dropped=hooks)
    return crds + objects, hooks, report


def children(req: ChartRequest, objects: list[dict], crd_scopes: Mapping[tuple[str, str], str],
             make_urn: Callable[[str, str, str], str]) -> list[Registration]:
    """The registrations the provider makes for ``objects``."""
    objs = []
    for obj in objects:
        obj = copy.deepcopy(obj)
        if not obj.get("kind") or not obj.get("apiVersion") or not (obj.get("metadata") or {}).get("name"):
            raise ChartRenderError(f"chart {req.resource_name}: an object lacks kind, apiVersion or metadata.name: {str(obj)[:200]}")
        if obj["apiVersion"].startswith("core/"):
            obj["apiVersion"] = obj["apiVersion"].removeprefix("core/")
        if not obj["metadata"].get("namespace") and namespaced(obj, crd_scopes):
            obj["metadata"]["namespace"] = req.namespace
        objs.append(obj)
    edges = dependency_edges(objs)
    urns: list[str] = []
    out: list[Registration] = []
    for obj in objs:
        meta = obj["metadata"]
        name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
        resource_name = f"{req.prefix}:{name}" if req.prefix else name
        typ = type_token(obj["apiVersion"], obj["kind"])
        urns.append(make_urn(req.urn, typ, resource_name))
    for i, obj in enumerate(objs):
        inputs = mask(obj, req.secrets)
        if obj["apiVersion"] == "v1" and obj["kind"] == "Secret":
            inputs = {k: ({_special_sig_key: _special_secret_sig, "value": v} if k in ("data", "stringData") else v)
                      for k, v in inputs.items()}
        keep = ((obj["metadata"].get("annotations") or {}).get(RESOURCE_POLICY) == "keep")
        options = {**({"protect": True} if req.protect else {}), **({"retainOnDelete": True} if keep else {})}
        out.append(Registration(
            urn=urns[i], type=type_token(obj["apiVersion"], obj["kind"]), name=urns[i].rsplit("::", 1)[-1],
            parent=req.urn, dependencies=sorted(urns[j] for j in edges[i]), custom=True, remote=False,
            inputs=inputs, options=options))
    return out


def crd_scopes_of(crds: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    return {((c.get("spec") or {}).get("group", ""), ((c.get("spec") or {}).get("names") or {}).get("kind", "")):
            (c.get("spec") or {}).get("scope", "Namespaced") for c in crds}


def expand(registrations: list[Registration], kubernetes_version: str,
           make_urn: Callable[[str, str, str], str], check_values: bool = True) -> tuple[list[Registration], list[ChartReport]]:
    """Every chart's children, rendered for ``kubernetes_version`` with the plan's CRDs as API versions.

    Two passes: the first finds every CRD the plan installs (the kit's, the charts' ``crds/`` and
    templated ones); the second renders each chart knowing all of them, as Helm would on a cluster
    where they are installed.
    """
    kube_version = f"v{kubernetes_version}.0" if kubernetes_version.count(".") == 1 else f"v{kubernetes_version}"
    requests = [ChartRequest.of(r) for r in registrations if r.type == CHART_TYPE]
    plan_crds = [r.inputs for r in registrations if r.inputs.get("kind") == "CustomResourceDefinition"]
    problems: list[str] = []
    all_crds = list(plan_crds)
    for req in requests:
        try:
            if may_template_crds(req.folder):
                all_crds += templated_crds(render_text(req, kube_version, api_versions_of(plan_crds)))
            if not req.skip_crds:
                all_crds += crd_documents(req.folder, helm_engine.chart_defaults(req.folder, req.values))
        except ChartRenderError as err:
            problems.append(str(err))
    if problems:
        raise ChartRenderError("\n".join(problems))
    api_versions = api_versions_of(all_crds)
    scopes = crd_scopes_of(all_crds)
    registered: list[Registration] = []
    reports: list[ChartReport] = []
    for req in requests:
        objects, _, report = render_objects(req, kube_version, api_versions)
        if check_values:
            ignored = ignored_value_keys(req, lambda values: render_text(_with_values(req, values), kube_version, api_versions),
                                         objects)
            if ignored:
                problems.append(f"chart {req.resource_name} ({report.chart} {report.version}) ignores values "
                                f"the program sets: {', '.join(ignored)}")
        kids = children(req, objects, scopes, make_urn)
        # CRDs of crds/ folders that the program installs itself, before the chart (components/kit/chart.py)
        waited = next(set(r.dependencies) for r in registrations if r.urn == req.urn)
        report.crds += sum(r.urn in waited and r.inputs.get("kind") == "CustomResourceDefinition" for r in registrations)
        report.objects = len(kids)
        report.pods = sum(k.inputs.get("kind") in POD_KINDS for k in kids)
        registered += kids
        reports.append(report)
    if problems:
        raise ChartRenderError("\n".join(problems))
    return registered, reports


def _with_values(req: ChartRequest, values: dict[str, Any]) -> ChartRequest:
    return ChartRequest(**{**req.__dict__, "values": values})
