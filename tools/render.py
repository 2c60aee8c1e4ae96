"""Render a stack offline: the real ``__main__.py`` under Pulumi's mocks, written out as a plan.

``python -m tools.render --stack dev`` writes ``build/dev/plan.json`` (every registered
resource with its inputs, secrets masked) and ``build/dev/manifests/`` (every Kubernetes object
as YAML; Helm charts stay as their inputs in the plan), and prints counts and time taken.
It exits 1 on bad settings or anything the real engine would reject.
"""
from __future__ import annotations

import argparse
import json
import runpy
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from pulumi.runtime.rpc import UNKNOWN, _special_sig_key, _special_secret_sig

from tools import chart_expansion, mock_runtime
from tools.chart_expansion import ChartRenderError, ChartReport
from tools.mock_runtime import DuplicateUrnError, Recording, make_urn

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "somaagenthub"
SECRET = "[secret]"
DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
REMOTE_OR_COMPONENT_PREFIXES = ("kubernetes:helm.sh/", "kubernetes:yaml/")


class RenderError(RuntimeError):
    """The stack cannot be rendered; the message says why and where."""


def stack_config(stack: str, path: Path | None = None) -> dict[str, str]:
    """The stack file's config as the engine hands it to a program: objects as JSON strings."""
    path = path or ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.name for p in ROOT.glob("Pulumi.*.yaml")))
        raise RenderError(f"no stack file {path}; stack files here: {known}")
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RenderError(f"{path.name} is not valid YAML: {err}") from err
    if not isinstance(document, dict):
        raise RenderError(f"{path.name} must be a mapping with a 'config' key, not {type(document).__name__}")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise RenderError(f"{path.name}: 'config' must map keys such as somaagenthub:domain to values")
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def clean(value: Any) -> Any:
    """Wire values to plain JSON: secrets masked, whole-number floats back to integers."""
    if isinstance(value, dict):
        if value.get(_special_sig_key) == _special_secret_sig:
            return SECRET
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == UNKNOWN:
        return "[unknown]"
    return value


def _run_program(stack: str, config: dict[str, str]) -> Recording:
    program = str(ROOT / "__main__.py")
    return mock_runtime.run(lambda: runpy.run_path(program, run_name="__main__"), stack, config, PROJECT)


def build_plan(stack: str, recording: Recording, settings_summary: dict[str, Any]) -> dict[str, Any]:
    resources = [
        {
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "dependencies": r.dependencies,
            "custom": r.custom,
            "remote": r.remote,
            "options": r.options,
            "inputs": clean(r.inputs),
        }
        for r in sorted(recording.registrations, key=lambda r: r.urn)
    ]
    return {"stack": stack, "settings": settings_summary, "resources": resources}


def expand_charts(recording: Recording, kubernetes_version: str) -> list[ChartReport]:
    """Add every chart's children to ``recording``, as the engine would register them."""
    try:
        kids, reports = chart_expansion.expand(recording.registrations, kubernetes_version, make_urn)
    except ChartRenderError as err:
        raise RenderError(str(err)) from err
    reports.sort(key=lambda report: report.name)  # registration order varies between runs; the plan must not
    seen = {r.urn for r in recording.registrations}
    duplicates = [k.urn for k in kids if k.urn in seen or seen.add(k.urn)]
    if duplicates:
        raise DuplicateUrnError("the engine would refuse duplicate URNs:\n" + "\n".join(f"  - {u}" for u in duplicates))
    recording.registrations.extend(kids)
    return reports


def kubernetes_objects(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The Kubernetes objects of a plan: custom ``kubernetes:*`` resources, charts excluded."""
    return [
        r
        for r in plan["resources"]
        if r["custom"] and r["type"].startswith("kubernetes:") and not r["type"].startswith(REMOTE_OR_COMPONENT_PREFIXES)
        and "kind" in r["inputs"]
    ]


def object_identity(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj['kind']}/{meta.get('namespace', '_cluster')}/{meta.get('name')}"


def write_manifests(plan: dict[str, Any], out: Path) -> int:
    """One YAML file per object under manifests/<namespace>/; refuse two objects with one identity."""
    seen: dict[str, str] = {}
    shutil.rmtree(out, ignore_errors=True)
    for resource in kubernetes_objects(plan):
        obj = resource["inputs"]
        identity = object_identity(obj)
        if identity in seen:
            raise RenderError(f"{identity} is declared twice ({seen[identity]} and {resource['urn']}); the cluster keeps only one")
        seen[identity] = resource["urn"]
        kind, namespace, name = identity.split("/")
        folder = out / namespace
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{kind.lower()}-{name}.yaml").write_text(yaml.dump(obj, Dumper=DUMPER, sort_keys=False))
    return len(seen)


def phase_of(urn: str) -> str:
    qualified = urn.split("::")[2]
    for part in qualified.split("$"):
        if part.startswith("somaagenthub:phase:"):
            return part.rsplit(":", 1)[-1]
    return "(stack)"


def dependency_waves(plan: dict[str, Any]) -> list[str]:
    """The longest chain of explicit dependencies, first to last: its length is how many waves the
    engine needs (a resource starts only once everything it depends on exists)."""
    deps = {r["urn"]: [d for d in r["dependencies"] if d != r["urn"]] for r in plan["resources"]}
    depth: dict[str, int] = {}
    for urn in deps:  # iterative, so a long chain cannot hit Python's recursion limit
        stack = [urn]
        while stack:
            top = stack[-1]
            pending = [d for d in deps[top] if d in deps and d not in depth]
            if pending:
                stack.extend(pending)
                continue
            depth[top] = 1 + max((depth[d] for d in deps[top] if d in deps), default=0)
            stack.pop()
    if not depth:
        return []
    chain = [max(depth, key=lambda u: (depth[u], u))]
    while deps[chain[-1]]:
        chain.append(max((d for d in deps[chain[-1]] if d in deps), key=lambda u: (depth[u], u)))
    return list(reversed(chain))


def summary(plan: dict[str, Any], seconds: float) -> str:
    per_phase = Counter(phase_of(r["urn"]) for r in plan["resources"])
    per_kind = Counter(r["inputs"].get("kind") or r["type"] for r in plan["resources"])
    lines = [f"stack {plan['stack']}: {len(plan['resources'])} resources in {seconds:.2f}s", "per chart (objects, pods):"]
    lines += [f"  {c['name']:<26} {c['chart'] + ' ' + c['version']:<44} {c['objects']:>4} objects {c['pods']:>3} pods"
              + (f", {len(c['hooksDropped'])} hooks not deployed" if c["hooksDropped"] else "")
              for c in plan.get("charts", [])]
    lines.append(f"  {'charts total':<26} {'':<44} {sum(c['objects'] for c in plan.get('charts', [])):>4} objects "
                 f"{sum(c['pods'] for c in plan.get('charts', [])):>3} pods")
    chain = dependency_waves(plan)
    lines.append(f"dependency waves: {len(chain)} (" + " -> ".join(u.rsplit("::", 1)[-1] for u in chain) + ")")
    lines.append("per phase:")
    lines += [f"  {phase:<12} {n}" for phase, n in sorted(per_phase.items())]
    lines.append("per kind:")
    lines += [f"  {kind:<48} {n}" for kind, n in sorted(per_kind.items())]
    return "\n".join(lines)


def render(stack: str, out_dir: Path | None = None, config: dict[str, str] | None = None) -> dict[str, Any]:
    """Render ``stack``; write plan.json and manifests when ``out_dir`` is given; return the plan.

    ``config`` replaces the stack file's configuration (tests use it to render variants).
    """
    plan, _ = render_with_secrets(stack, out_dir, config)
    return plan


def render_with_secrets(
    stack: str, out_dir: Path | None = None, config: dict[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Like :func:`render`, also returning the fake generated credentials (for leak tests)."""
    from components import catalog
    from components import settings as platform_settings

    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise RenderError(f"--out {out_dir} is a file; name a folder for plan.json and manifests/")
        (out_dir / "plan.json").unlink(missing_ok=True)  # never leave a stale plan for the gate to pass
    config = stack_config(stack) if config is None else config
    try:
        parsed = platform_settings.parse(config, stack)
        catalog.load()
    except (platform_settings.SettingsError, catalog.CatalogError) as err:
        raise RenderError(str(err)) from err
    recording = _run_program(stack, config)
    reports = expand_charts(recording, parsed.kubernetes_version)
    summary_settings = {
        "registry": parsed.registry,
        "kubernetesVersion": parsed.kubernetes_version,
        "enforcement": parsed.policy_enforcement,
        "phases": list(parsed.phases.enabled()),
    }
    plan = build_plan(stack, recording, summary_settings)
    plan["charts"] = [
        {"name": r.name, "chart": r.chart, "version": r.version, "objects": r.objects, "pods": r.pods,
         "crds": r.crds, "hooksDropped": r.hooks_dropped}
        for r in reports
    ]
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "plan.json").write_text(json.dumps(plan, indent=1, sort_keys=True))
        write_manifests(plan, out_dir / "manifests")
    return plan, recording.generated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", type=Path, help="default: build/<stack>")
    parser.add_argument("--stack-file", type=Path, help="default: Pulumi.<stack>.yaml")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        config = stack_config(args.stack, args.stack_file)
        plan = render(args.stack, args.out or ROOT / "build" / args.stack, config)
    except (RenderError, DuplicateUrnError) as err:
        print(f"render {args.stack}: {err}", file=sys.stderr)
        return 1
    print(summary(plan, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
