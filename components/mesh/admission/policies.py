"""What admission enforces: the CrossGuard pack's pod rules, as Gatekeeper ConstraintTemplates and constraints.

The gate (policies/) judges the plan before it is applied; Gatekeeper judges every pod the API server is
asked to create, whoever asks. Both must refuse the same pods, so everything here is derived from what the
gate already reads:

* the rule each constraint stands for (``RULE_TEMPLATES``: one pack rule, one or more templates);
* the registries a stack may pull from and the digests it may run, from the pack's ``digest-pinned-images``
  config and ``platform.lock.yaml``, through the pack's own functions (``policies.images``);
* the exceptions, from the same ``allowedWaivers`` lists of ``policies/config/<stack>.json``: an entry
  that waives a rule (or one finding of it) for ``<Kind>/<namespace>/<name>`` exempts that namespace
  from the templates that report that finding, and nothing else. There is no second list.

Templates come from gatekeeper-library (``library/``, vendored at the commit ``library/VENDORED.yaml``
records, with its LICENSE) where it has them, and are our own (``templates/``) where it does not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from policies.catalog import load_catalog
from policies.config import load_config_file, resolve_settings, stack_config_path
from policies.images import allowed_prefixes
from policies.rules import RULES

HERE = Path(__file__).resolve().parent
LIBRARY = HERE / "library"
OWN = HERE / "templates"
CONSTRAINTS_API = "constraints.gatekeeper.sh/v1beta1"
TEMPLATES_API = "templates.gatekeeper.sh/v1"
TARGET = "admission.k8s.gatekeeper.sh"
POD_KINDS = [{"apiGroups": [""], "kinds": ["Pod"]}]

CLUSTER_EXEMPT = {
    "kube-system": "the cluster's own components (kube-proxy, the CNI, CoreDNS) are installed and upgraded by "
    "the cluster provider, not by this program, and run with host access; the gate never sees them, and "
    "refusing them would break the nodes. No platform workload runs there.",
}
"""Namespaces no constraint matches, each with its reason (the admission namespace itself is exempt at the
webhook, components/mesh/admission/gatekeeper.py)."""


@dataclass(frozen=True)
class TemplateUse:
    """One template as a pack rule uses it: the findings of that rule it reports and its parameters."""

    folder: str
    findings: tuple[str, ...]
    """Phrases of the pack rule's messages this template reports: a waiver scoped to a finding exempts the
    templates whose phrases it contains; a waiver of the whole rule exempts every template of the rule."""
    own: bool = False


RULE_TEMPLATES: dict[str, tuple[TemplateUse, ...]] = {
    "non-root": (
        TemplateUse("run-as-non-root", ("runAsNonRoot",), own=True),
        TemplateUse("users", ("runAsUser",)),
        TemplateUse("privileged-containers", ("privileged must not",)),
        TemplateUse("allow-privilege-escalation", ("allowPrivilegeEscalation",)),
        TemplateUse("drop-all-capabilities", ("capabilities.drop",), own=True),
        TemplateUse("seccomp", ("seccompProfile",)),
    ),
    "resource-limits": (TemplateUse("containerresources", ("resources.",)),),
    "read-only-root-filesystem": (TemplateUse("read-only-root-filesystem", ("readOnlyRootFilesystem",)),),
    "no-host-access": (
        TemplateUse("host-namespaces", ("hostPID", "hostIPC")),
        TemplateUse("host-network-ports", ("hostNetwork", "hostPort")),
        TemplateUse("host-filesystem", ("hostPath",)),
    ),
    "digest-pinned-images": (
        TemplateUse("imagedigests", ("pinned by digest",)),
        TemplateUse("allowedrepos", ("allowed registry",)),
        TemplateUse("catalog-images", ("platform.lock.yaml", "catalog", "allowed registry", "pinned by digest"), own=True),
    ),
}


@dataclass(frozen=True)
class Template:
    folder: str
    document: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.document["metadata"]["name"]

    @property
    def kind(self) -> str:
        return self.document["spec"]["crd"]["spec"]["names"]["kind"]

    @property
    def schema(self) -> Mapping[str, Any]:
        return self.document["spec"]["crd"]["spec"].get("validation", {}).get("openAPIV3Schema", {})

    @property
    def rego(self) -> str:
        return self._rego_source()["rego"]

    @property
    def libs(self) -> tuple[str, ...]:
        return tuple(self._rego_source().get("libs") or ())

    @property
    def package(self) -> str:
        return self.rego.split("package ", 1)[1].split()[0]

    def _rego_source(self) -> Mapping[str, Any]:
        """The Rego Gatekeeper runs: ``rego``/``libs`` of the target, or of its ``code`` entry of engine Rego
        (newer library templates also carry a K8sNativeValidation (CEL) entry, which Gatekeeper runs too when
        validating admission policies are on; the Rego is what both this repository's tests and the audit run)."""
        target = next(t for t in self.document["spec"]["targets"] if t["target"] == TARGET)
        if "rego" in target:
            return target
        return next(c["source"] for c in target.get("code", []) if c.get("engine") == "Rego")


@lru_cache(maxsize=None)
def template(folder: str, own: bool = False) -> Template:
    path = (OWN / f"{folder}.yaml") if own else (LIBRARY / folder / "template.yaml")
    return Template(folder, yaml.safe_load(path.read_text(encoding="utf-8")))


def templates() -> tuple[Template, ...]:
    return tuple(template(use.folder, use.own) for uses in RULE_TEMPLATES.values() for use in uses)


@dataclass(frozen=True)
class Exemption:
    """A namespace a template skips, because the stack's policy config waives that rule there."""

    namespace: str
    resource: str
    reason: str


@dataclass(frozen=True)
class Constraint:
    rule: str
    template: Template
    parameters: Mapping[str, Any]
    enforcement_action: str
    exemptions: tuple[Exemption, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"soma-{self.template.folder}"

    @property
    def excluded_namespaces(self) -> list[str]:
        return sorted({*CLUSTER_EXEMPT, *(e.namespace for e in self.exemptions)})

    def document(self) -> dict[str, Any]:
        annotations = {"somaagenthub.io/rule": self.rule}
        for e in self.exemptions:
            annotations[f"waivers.somaagenthub.io/{e.namespace}"] = f"{e.resource}: {e.reason}"
        spec: dict[str, Any] = {
            "enforcementAction": self.enforcement_action,
            "match": {"kinds": POD_KINDS, "excludedNamespaces": self.excluded_namespaces},
        }
        if self.parameters:
            spec["parameters"] = dict(self.parameters)
        return {
            "apiVersion": CONSTRAINTS_API,
            "kind": self.template.kind,
            "metadata": {"name": self.name, "annotations": annotations},
            "spec": spec,
        }


def pack_settings(stack: str) -> Mapping[str, Any]:
    """Each rule's config for ``stack``, as the gate resolves it (schema defaults filled in)."""
    return {name: s.config for name, s in resolve_settings(load_config_file(stack_config_path(stack)), RULES).items()}


def image_parameters(config: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
    """(catalog references, registry prefixes) a pod may use, from digest-pinned-images' config."""
    catalog = load_catalog(config.get("catalogPath"))
    allowed = [str(p) for p in config.get("allowedRegistries", [])]
    images, prefixes = [], set()
    for entry in catalog.images:
        if entry.signer is None or not entry.signer.is_complete:
            continue
        for prefix in allowed_prefixes(entry, allowed):
            images.append({"name": f"{prefix}/{entry.repository}", "tag": entry.tag, "digest": entry.digest})
            prefixes.add(f"{prefix}/")
    images.sort(key=lambda i: (i["name"], i["digest"]))
    return images, sorted(prefixes)


def parameters(folder: str, rule_config: Mapping[str, Any], pack: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Each template's parameters, chosen so that it refuses exactly what its pack rule refuses."""
    if folder == "users":
        return {"runAsUser": {"rule": "MustRunAsNonRoot"}}
    if folder == "seccomp":
        return {"allowedProfiles": ["runtime/default", "localhost/*"]}
    if folder == "containerresources":
        return {"limits": ["cpu", "memory"], "requests": ["cpu", "memory"]}
    if folder == "host-network-ports":
        return {"hostNetwork": False, "min": 0, "max": 0}
    if folder == "host-filesystem":
        return {"allowedHostPaths": []}
    if folder in ("allowedrepos", "catalog-images"):
        images, prefixes = image_parameters(pack["digest-pinned-images"])
        return {"repos": prefixes} if folder == "allowedrepos" else {"images": images}
    return {}


def exemptions(rule: str, use: TemplateUse, config: Mapping[str, Any]) -> tuple[Exemption, ...]:
    """The namespaces the stack's allow-list waives ``rule`` in, for the findings ``use`` reports.

    Image-scoped entries excuse one image *reference* (an operator's default named in its environment),
    not a pod: they exempt no namespace (tests/mesh/test_admission_agreement.py checks no pod runs them).
    """
    found = []
    for entry in config.get("allowedWaivers", []):
        if not isinstance(entry, Mapping) or entry.get("image"):
            continue
        finding = str(entry.get("finding") or "")
        if finding and not any(phrase in finding for phrase in use.findings):
            continue
        kind, _, rest = str(entry["resource"]).partition("/")
        namespace, _, name = rest.partition("/")
        if not name:
            continue  # a cluster-scoped object runs no pod
        found.append(Exemption(namespace, str(entry["resource"]), str(entry.get("reason", "")).strip()))
    return tuple(found)


def constraints(stack: str, enforcement_action: str) -> tuple[Constraint, ...]:
    """Every constraint of ``stack``: one per template, its parameters and exemptions from the pack's config."""
    pack = pack_settings(stack)
    made = []
    for rule, uses in RULE_TEMPLATES.items():
        for use in uses:
            made.append(Constraint(
                rule=rule,
                template=template(use.folder, use.own),
                parameters=parameters(use.folder, pack[rule], pack),
                enforcement_action=enforcement_action,
                exemptions=exemptions(rule, use, pack[rule]),
            ))
    return tuple(made)


def rego_modules(t: Template) -> Iterable[tuple[str, str]]:
    """(module name, source) of a template as Gatekeeper loads it: its rego and each of its ``libs``."""
    yield f"{t.folder}.rego", t.rego
    for index, lib in enumerate(t.libs):
        yield f"{t.folder}-lib{index}.rego", lib


PARTIAL_SET_HEAD = re.compile(r"^(?P<name>[a-z_][A-Za-z0-9_]*)\[(?P<term>.+)\]\s*\{\s*$")


def as_rego_v1(source: str) -> str:
    """``source`` with its v0 partial-set heads (``name[term] {``) written as v1 (``name contains term if {``).

    Gatekeeper 3.23 runs a template's ``rego`` as Rego v0. The offline tests run it with regopy (rego-cpp),
    which parses Rego v1 only and reads a v0 partial-set head as an object rule whose values are ``true``,
    so ``input_containers[_]`` would yield ``true`` instead of the containers. Only that head changes
    meaning between the versions in these templates; the rest (rules and functions without ``if``, ``=``
    heads, ``else``) rego-cpp reads as v0 does. Object heads (``name[key] = value {``) are left alone.
    """
    return "\n".join(
        PARTIAL_SET_HEAD.sub(lambda m: f"{m['name']} contains {m['term']} if {{", line) for line in source.split("\n")
    )
