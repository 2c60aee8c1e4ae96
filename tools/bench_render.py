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


def best_of(runs: int, command: list[str]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return min(times)


def stages(stack: str) -> dict[str, float]:
    """One in-process render, timed stage by stage (Helm calls counted through the engine module)."""
    from tools import chart_expansion, chart_values, helm_engine, render

    spent = {"helm renders": 0.0, "ignored-value check": 0.0}
    calls = {"helm renders": 0}
    template, ignored = helm_engine.template, chart_values.ignored_value_keys

    def timed_template(*args, **kwargs):
        started = time.perf_counter()
        try:
            return template(*args, **kwargs)
        finally:
            spent["helm renders"] += time.perf_counter() - started
            calls["helm renders"] += 1

    def timed_ignored(*args, **kwargs):
        started = time.perf_counter()
        try:
            return ignored(*args, **kwargs)
        finally:
            spent["ignored-value check"] += time.perf_counter() - started

    helm_engine.template, chart_expansion.ignored_value_keys = timed_template, timed_ignored
    try:
        config = render.stack_config(stack)
        started = time.perf_counter()
        recording = render._run_program(stack, config)
        program = time.perf_counter() - started
        started = time.perf_counter()
        render.expand_charts(recording, __import__("components.settings").settings.parse(config, stack).kubernetes_version)
        expansion = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            render.render(stack, Path(out), config)
            whole = time.perf_counter() - started
    finally:
        helm_engine.template, chart_expansion.ignored_value_keys = template, ignored
    return {"program under mocks": program, "chart expansion": expansion, **spent,
            "whole render, in process": whole, "helm render calls": float(calls["helm renders"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    floor = best_of(args.runs, [sys.executable, "-c", IMPORTS])
    with tempfile.TemporaryDirectory() as out:
        whole = best_of(args.runs, [sys.executable, "-m", "tools.render", "--stack", args.stack, "--out", out])
    print(f"import floor (pulumi, pulumi_kubernetes, pulumi_random, pulumi_vault): {floor:.2f} s (best of {args.runs})")
    print(f"full render of {args.stack}, every chart expanded, fresh process:      {whole:.2f} s (best of {args.runs})")
    print(f"ratio to the floor: {whole / floor:.1f}x (target: at most 3x)")
    print("inside one render (the helm and ignored-value figures are part of chart expansion):")
    for name, value in stages(args.stack).items():
        print(f"  {name:<28} {int(value) if name.endswith('calls') else f'{value:.2f} s'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
