"""k6's end-of-test summary → the same checks and stage result as a local run.

Reads both JSON shapes k6 writes (their reference: grafana/k6 at v2.2.0, ``internal/js/summary_test.go``,
``expectedHandleSummaryRawData`` and ``expectedOldJSONExportResult``):

- the ``handleSummary(data)`` object, which the generated scripts print to stdout on one line after
  ``K6_SUMMARY_JSON `` (components/ops/k6.py): ``metrics.<name>.values`` holds the figures and
  ``metrics.<name>.thresholds.<source>.ok`` is true when the threshold held;
- the ``--summary-export`` file: the figures sit directly under ``metrics.<name>`` (a rate's is ``value``)
  and ``metrics.<name>.thresholds.<source>`` is true when the threshold **failed**.

A runner pod's log can be passed as it is: the summary line is found by its prefix. The verdicts are k6's
own (it evaluated the thresholds over all samples); the observed figure beside each is read from the same
summary. A summary without the scenario's ``http_req_duration`` and ``http_req_failed`` thresholds is refused:
it did not come from a script generated from scenarios.yaml.

    python -m tools.ops.k6_summary workflow-run=runner.log tool-list=summary.json [--record STACK]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tools.ops.results import Check, StageResult

MARKER = "K6_SUMMARY_JSON "
REQUIRED = ("http_req_duration", "http_req_failed")
THRESHOLD = re.compile(r"^\s*(?P<stat>[a-z]+(?:\(\d+(?:\.\d+)?\))?)\s*(?P<op><=|>=|<|>|==|===|!=)\s*(?P<value>[-0-9.eE+]+)\s*$")


class SummaryError(ValueError):
    """Not a k6 summary this module can read, or one without the scenario's thresholds."""


@dataclass(frozen=True)
class ScenarioSummary:
    name: str
    checks: tuple[Check, ...]
    requests: int
    achieved_rate: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def summary_json(text: str, where: str) -> dict[str, Any]:
    """The summary object of ``text``: a JSON document, or a log with one ``K6_SUMMARY_JSON`` line."""
    candidates = [line[line.index(MARKER) + len(MARKER):] for line in text.splitlines() if MARKER in line]
    body = candidates[-1] if candidates else text
    try:
        data = json.loads(body)
    except ValueError as error:
        raise SummaryError(f"{where}: no k6 summary JSON ({error.__class__.__name__}: {error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        raise SummaryError(f"{where}: not a k6 summary (no `metrics` object)")
    return data


def _figures(metric: dict[str, Any]) -> dict[str, Any]:
    """The figures of one metric in either shape (handleSummary nests them under ``values``)."""
    if isinstance(metric.get("values"), dict):
        return metric["values"]
    figures = {k: v for k, v in metric.items() if k != "thresholds"}
    if "value" in figures and "rate" not in figures and "passes" in figures:
        figures["rate"] = figures["value"]
    return figures


def _held(verdict: Any, where: str) -> bool:
    if isinstance(verdict, dict) and isinstance(verdict.get("ok"), bool):
        return verdict["ok"]
    if isinstance(verdict, bool):
        return not verdict  # --summary-export: true means the threshold failed
    raise SummaryError(f"{where}: a threshold verdict is {{'ok': bool}} or a bool, not {verdict!r}")


def _unit(metric: str) -> str:
    return "ms" if metric == "http_req_duration" else ""


def parse(name: str, text: str, where: str) -> ScenarioSummary:
    data = summary_json(text, where)
    metrics: dict[str, Any] = data["metrics"]
    missing = [m for m in REQUIRED if not (metrics.get(m) or {}).get("thresholds")]
    if missing:
        raise SummaryError(f"{where}: no thresholds on {', '.join(missing)}: not a run of a script generated from "
                           "components/ops/scenarios.yaml")
    checks = []
    for metric_name in sorted(metrics):
        metric = metrics[metric_name]
        if not isinstance(metric, dict) or not metric.get("thresholds"):
            continue
        figures = _figures(metric)
        for source, verdict in metric["thresholds"].items():
            found = THRESHOLD.match(source)
            stat = found["stat"] if found else source
            figure = figures.get(stat)
            observed = f"{stat}={figure:.4g}{_unit(metric_name)}" if isinstance(figure, (int, float)) else "not in the summary"
            checks.append(Check(f"{name} {metric_name} {stat}", _held(verdict, f"{where}: {metric_name} {source}"),
                                observed, f"{source}{_unit(metric_name) if stat.startswith('p(') else ''}"))
    requests = _figures(metrics.get("http_reqs", {}))
    return ScenarioSummary(name, tuple(checks), int(requests.get("count", 0) or 0), float(requests.get("rate", 0.0) or 0.0))


def stage_result(stack: str, release: str, summaries: list[ScenarioSummary], source: str,
                 finished: datetime | None = None) -> StageResult:
    when = (finished or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    checks = tuple(c for s in summaries for c in s.checks)
    return StageResult(kind="load", stack=stack, release=release, finished_at=when.isoformat().replace("+00:00", "Z"),
                       passed=bool(summaries) and all(s.passed for s in summaries), source=source, checks=checks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Read k6 end-of-test summaries (handleSummary JSON, --summary-export "
                                     "or a runner log) and print each threshold; --record writes the stage result.")
    parser.add_argument("summaries", nargs="+", metavar="SCENARIO=FILE")
    parser.add_argument("--record", metavar="STACK", help="write promotions/results/STACK/load.json (never by default)")
    args = parser.parse_args(argv)
    summaries = []
    for item in args.summaries:
        name, _, path = item.partition("=")
        if not name or not path:
            parser.error(f"{item!r}: give SCENARIO=FILE")
        try:
            summaries.append(parse(name, Path(path).read_text(encoding="utf-8"), path))
        except (OSError, SummaryError) as error:
            print(f"k6 summary: {error}", file=sys.stderr)
            return 2
    for summary in summaries:
        print(f"{summary.name}: {summary.requests} requests, {summary.achieved_rate:.2f}/s")
        for check in summary.checks:
            print(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.observed} (threshold {check.threshold})")
    if args.record:
        from components import catalog
        from tools.ops import results
        from tools.ops.release import release_digests, release_id

        result = stage_result(args.record, release_id(release_digests(catalog.load())), summaries,
                              f"k6 TestRun summaries ({', '.join(s.name for s in summaries)})")
        print(f"recorded {results.write(Path.cwd(), result)} ({'green' if result.passed else 'red'})")
    return 0 if all(s.passed for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
