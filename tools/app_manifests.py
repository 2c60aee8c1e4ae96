"""The applications repository's folders from a rendered plan, as ``pulumi up`` would write them.

With ``agents.delivery.mode: argocd`` each service's application objects are registered with a Kubernetes provider
whose ``renderYamlToDirectory`` is ``<checkout>/<path>/<environment>`` (components/agents/services.py
``manifests_provider``). That provider writes each object to ``<directory>/1-manifest/<file>`` instead of a cluster
(pulumi-kubernetes provider/pkg/provider/provider.go ``renderYaml``/``renderPathForResource``). Without an engine,
``python -m tools.app_manifests --stack prod [--out DIR]`` (``make app-manifests STACK=prod [OUT=DIR]``) writes the
same objects from ``build/<stack>/plan.json`` into ``DIR/<path>/<environment>/1-manifest/``: one YAML file per
object, named as the provider names it, keys sorted as its encoder (``sigs.k8s.io/yaml``, go-yaml v2) sorts them.
The same objects, not promised to be the same bytes: PyYAML and go-yaml may quote a scalar differently.

Refused (exit 1, nothing written): an object the stack's gate blocks, an object holding a secret (the real provider
would write it in plain text into a Git repository), two objects that would share a file. Exit 2: no plan, or a
plan the gate cannot read.
"""
from __future__ import annotations

import argparse
import posixpath
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from tools.render import ROOT, SECRET, kubernetes_objects, stack_config

PROVIDER_TYPE = "pulumi:providers:kubernetes"
RENDER_INPUT = "renderYamlToDirectory"
MANIFEST_FOLDER = "1-manifest"
"""pulumi-kubernetes' folder for every object but CRDs (``0-crd``; a service renders none)."""
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class AppManifestError(RuntimeError):
    """The folders cannot be written; the message says which object and why."""


@dataclass(frozen=True)
class ManifestFile:
    folder: str
    """``<path>/<environment>``, relative to the applications repository."""
    name: str
    urn: str
    object: Mapping[str, Any]

    @property
    def path(self) -> str:
        return f"{self.folder}/{MANIFEST_FOLDER}/{self.name}"


def render_providers(plan: Mapping[str, Any]) -> dict[str, str]:
    """Provider URN -> the directory it renders into, for every YAML render provider of the plan."""
    return {r["urn"]: r["inputs"][RENDER_INPUT] for r in plan["resources"]
            if r["type"] == PROVIDER_TYPE and r["inputs"].get(RENDER_INPUT)}


def rendered_to_files(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The plan's Kubernetes resources registered with a render provider: files of the applications repository,
    Argo CD's to apply, not Pulumi's (tests/governance/test_argocd_ownership.py)."""
    providers = render_providers(plan)
    return [r for r in kubernetes_objects(plan) if r["options"].get("provider") in providers]


def on_cluster(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The plan's Kubernetes resources that Pulumi applies to the cluster (every one not rendered to a file)."""
    providers = render_providers(plan)
    return [r for r in kubernetes_objects(plan) if r["options"].get("provider") not in providers]


def file_name(obj: Mapping[str, Any]) -> str:
    """``renderPathForResource``: ``<apiVersion, '/' and ':' as '_'>-<kind, lower case>-<namespace or default>-<name>.yaml``."""
    meta = obj.get("metadata") or {}
    api_version = obj["apiVersion"].replace("/", "_").replace(":", "_")
    return f"{api_version}-{obj['kind'].lower()}-{meta.get('namespace') or 'default'}-{meta['name']}.yaml"


def manifest_files(plan: Mapping[str, Any], checkout: str) -> list[ManifestFile]:
    """Every rendered object as the file the provider writes, ``checkout`` stripped from its directory; sorted by path."""
    providers = render_providers(plan)
    files: list[ManifestFile] = []
    for resource in rendered_to_files(plan):
        directory = providers[resource["options"]["provider"]]
        folder = posixpath.relpath(posixpath.normpath(directory), posixpath.normpath(checkout))
        if folder.startswith(".."):
            raise AppManifestError(f"{resource['urn']}: its provider renders into {directory}, outside the checkout {checkout}")
        files.append(ManifestFile(folder, file_name(resource["inputs"]), resource["urn"], resource["inputs"]))
    return sorted(files, key=lambda f: f.path)


def problems(files: list[ManifestFile], blocked: Mapping[str, list[str]]) -> list[str]:
    """Why ``files`` must not be written: a gate block, a secret, two objects in one file."""
    found: list[str] = []
    seen: dict[str, str] = {}
    for f in files:
        found += [f"{f.path}: the gate blocks {f.urn}: {m}" for m in blocked.get(f.urn, [])]
        if SECRET in _strings(f.object):
            found.append(f"{f.path}: {f.urn} holds a secret value; an application manifest holds none (credentials "
                         "come from Vault through External Secrets, which the platform owns)")
        if f.path in seen:
            found.append(f"{f.path}: written by both {seen[f.path]} and {f.urn}; the provider would keep only one")
        seen.setdefault(f.path, f.urn)
    return found


def write(files: list[ManifestFile], out: Path) -> list[Path]:
    """Each ``<out>/<folder>/1-manifest/`` emptied, then one file per object (stale objects do not survive, as the
    provider deletes the file of a deleted resource)."""
    for folder in sorted({f.folder for f in files}):
        shutil.rmtree(out / folder / MANIFEST_FOLDER, ignore_errors=True)
    written = []
    for f in files:
        path = out / f.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.dump(dict(f.object), Dumper=DUMPER, sort_keys=True, default_flow_style=False), encoding="utf-8")
        written.append(path)
    return written


def gate_blocks(plan: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, list[str]]:
    """URN -> the gate's blocking messages about it, under ``config`` (the stack's policy config)."""
    from tools.gate import run_gate

    report = run_gate(plan, config)
    blocked: dict[str, list[str]] = {}
    for line in report.blocking:
        blocked.setdefault(line.urn, []).append(f"{line.rule}: {line.message}")
    return blocked


def checkout_of(stack: str) -> str:
    """``agents.delivery.checkout`` of the stack (the prefix of every render provider's directory)."""
    from components import settings

    delivery = settings.parse(stack_config(stack), stack).agents.delivery
    return delivery.checkout or "."


def _strings(value: Any) -> set[str]:
    if isinstance(value, Mapping):
        return {s for v in value.values() for s in _strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in _strings(v)}
    return {value} if isinstance(value, str) else set()


def main(argv: list[str] | None = None) -> int:
    from components.config_schema import SettingsError
    from policies.config import PolicyConfigError, load_config_file, stack_config_path
    from tools.gate import GateError, load_plan

    parser = argparse.ArgumentParser(prog="python -m tools.app_manifests", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--plan", type=Path, help="default: build/<stack>/plan.json")
    parser.add_argument("--out", type=Path, help="default: build/<stack>/applications (a working copy of the applications repository works too)")
    parser.add_argument("--config", type=Path, help="policy config (default policies/config/<stack>.json)")
    args = parser.parse_args(argv)
    try:
        plan = load_plan(args.plan or ROOT / "build" / args.stack / "plan.json")
        if plan.get("stack") != args.stack:
            raise GateError(f"the plan is for stack '{plan.get('stack')}', not '{args.stack}'")
        files = manifest_files(plan, checkout_of(args.stack))
        config = load_config_file(args.config or stack_config_path(args.stack)) if files else {}
        found = problems(files, gate_blocks(plan, config) if files else {})
    except (GateError, AppManifestError, SettingsError, PolicyConfigError) as err:
        print(f"app-manifests {args.stack}: {err}", file=sys.stderr)
        return 2
    if found:
        print(f"app-manifests {args.stack}: nothing written:\n" + "\n".join(f"  - {p}" for p in found), file=sys.stderr)
        return 1
    if not files:
        print(f"app-manifests {args.stack}: no object is rendered to the applications repository here "
              "(no service enabled, or agents.delivery.mode is pulumi)")
        return 0
    out = args.out or ROOT / "build" / args.stack / "applications"
    for path in write(files, out):
        print(path.relative_to(out))
    print(f"{len(files)} files in {len(set(f.folder for f in files))} folders under {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
