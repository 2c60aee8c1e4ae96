"""Benchmark: the full offline render of a stack, every chart expanded, beside the import floor.

``python -m tools.bench_render --stack prod`` prints, best of ``--runs``:

* the floor: a fresh interpreter importing pulumi, pulumi_kubernetes, pulumi_random and
  pulumi_vault and nothing else;
* the whole render in a fresh interpreter (``python -m tools.render``), and its ratio to the floor;
* where the time goes inside one render: the program under the mocks, Helm renders, the check for
  ignored values, writing plan and manifests.

It measures and prints; it asserts nothing (speed targets are not tests).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = "import pulumi, pulumi_kubernetes, pulumi_random, pulumi_vault"


def best_of(runs: int, command: list[str], cold: bool = False) -> float:
    """Best wall time of ``runs``; ``cold`` removes the render's disk cache (parsed CRD folders) first."""
    import shutil

    from tools.chart_expansion import CACHE

    times = []
    for _ in range(runs):
        if cold:
            shutil.rmtree(CACHE, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return min(times)


def stages(stack: str) -> dict[str, float]:
    """One cold in-process render, timed stage by stage (Helm calls timed through the engine module)."""
    import json

    from components import settings
    from tools import chart_expansion, chart_values, helm_engine, render

    chart_expansion._render_text.cache_clear()
    spent = {"  helm renders": 0.0, "  ignored-value check (incl. its renders)": 0.0}
    calls = 0
    template, ignored = helm_engine.template, chart_values.ignored_value_keys

    def timed_template(*args, **kwargs):
        nonlocal calls
        started = time.perf_counter()
        try:
            return template(*args, **kwargs)
        finally:
            spent["  helm renders"] += time.perf_counter() - started
            calls += 1

    def timed_ignored(*args, **kwargs):
        started = time.perf_counter()
        try:
            return ignored(*args, **kwargs)
        finally:
            spent["  ignored-value check (incl. its renders)"] += time.perf_counter() - started

    helm_engine.template, chart_expansion.ignored_value_keys = timed_template, timed_ignored
    try:
        config = render.stack_config(stack)
        started = time.perf_counter()
        recording = render._run_program(stack, config)
        program = time.perf_counter() - started
        started = time.perf_counter()
        reports = render.expand_charts(recording, settings.parse(config, stack).kubernetes_version)
        expansion = time.perf_counter() - started
        started = time.perf_counter()
        plan = render.build_plan(stack, recording, {})
        with tempfile.TemporaryDirectory() as out:
            (Path(out) / "plan.json").write_text(json.dumps(plan, indent=1, sort_keys=True))
            render.write_manifests(plan, Path(out) / "manifests")
        written = time.perf_counter() - started
    finally:
        helm_engine.template, chart_expansion.ignored_value_keys = template, ignored
    return {"program under mocks": program, "chart expansion": expansion, **spent,
            "plan and manifests written": written, "helm render calls": float(calls),
            "charts": float(len(reports))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    floor = best_of(args.runs, [sys.executable, "-c", IMPORTS])
    command = [sys.executable, "-m", "tools.render", "--stack", args.stack, "--out"]
    with tempfile.TemporaryDirectory() as out:
        cold = best_of(args.runs, [*command, out], cold=True)
        warm = best_of(args.runs, [*command, out])
    print(f"import floor (pulumi, pulumi_kubernetes, pulumi_random, pulumi_vault): {floor:.2f} s (best of {args.runs})")
    print(f"full render of {args.stack}, every chart expanded, fresh process, no disk cache: {cold:.2f} s "
          f"({cold / floor:.1f}x the floor; target: at most 3x)")
    print(f"the same with build/.cache (parsed CRD folders) from an earlier render:   {warm:.2f} s ({warm / floor:.1f}x)")
    print("inside one render in process, per-process caches cleared (indented figures are part of chart expansion):")
    for name, value in stages(args.stack).items():
        counted = name.endswith(("calls", "charts"))
        print(f"  {name:<44} {int(value) if counted else f'{value:.2f} s'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
