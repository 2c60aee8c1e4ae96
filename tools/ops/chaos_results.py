"""Turn a finished resilience Workflow into the stage's chaos result (promotions/results/<stack>/chaos.json).

Input: what kubectl prints for the Workflow and its WorkflowNodes (Chaos Mesh 2.8.2's CRDs), from a file
or stdin, one JSON document after the other or one ``List``::

    WF=$(kubectl -n soma-chaos get workflows -o name | sort | tail -1)       # workflow.chaos-mesh.org/resilience-<release>
    { kubectl -n soma-chaos get "$WF" -o json;
      kubectl -n soma-chaos get workflownodes -l chaos-mesh.org/workflow="${WF##*/}" -o json; } \\
      | python -m tools.ops.chaos_results --stack staging

How the status is read (chaos-mesh v2.8.2, api/v1alpha1/workflow_types.go, workflownode_types.go and
pkg/workflow/controllers): the Workflow is finished when its ``Accomplished`` condition is ``True``; a
StatusCheck node is ``Accomplished`` once its check completed and ``Aborted`` when its check exceeded the
failure threshold with ``abortWithStatusCheck`` (which also aborts the entry node and annotates the
Workflow ``workflow.chaos-mesh.org/abort: "true"``). The release comes from the Workflow's
``somaagenthub.io/release`` annotation (components/ops/chaos.py), so the result names exactly the
release that was tested. A Workflow still running writes nothing and exits 1.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from components.ops.experiments import RELEASE_ANNOTATION
from tools.ops.results import Check, StageResult, write

ABORT_ANNOTATION = "workflow.chaos-mesh.org/abort"
WORKFLOW_LABEL = "chaos-mesh.org/workflow"


class StatusError(ValueError):
    """The input is not a finished resilience Workflow with its nodes; the message says what is missing."""


def documents(text: str) -> list[dict[str, Any]]:
    """Every object in ``text``: concatenated JSON documents, ``List`` items flattened."""
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text):
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            break
        try:
            document, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as error:
            raise StatusError(f"input is not kubectl's JSON output: {error}") from None
        items = document.get("items") if isinstance(document, dict) and document.get("kind", "").endswith("List") else None
        found.extend(items if isinstance(items, list) else [document])
    return [d for d in found if isinstance(d, dict)]


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def _is_true(obj: Mapping[str, Any], kind: str) -> bool:
    condition = _condition(obj, kind)
    return condition is not None and condition.get("status") == "True"


def _workflow(objects: Iterable[dict[str, Any]], name: str | None) -> dict[str, Any]:
    workflows = [o for o in objects if o.get("kind") == "Workflow" and (name is None or o["metadata"].get("name") == name)]
    if not workflows:
        raise StatusError("no Workflow" + (f" named {name}" if name else "") + " in the input (kubectl get workflow <name> -o json)")
    if len(workflows) > 1:
        names = ", ".join(w["metadata"].get("name", "?") for w in workflows)
        raise StatusError(f"several Workflows in the input ({names}); name one with --workflow")
    return workflows[0]


def _threshold(template: Mapping[str, Any]) -> str:
    check = template.get("statusCheck") or {}
    window = int(check.get("failureThreshold", 1)) * int(check.get("intervalSeconds", 1))
    return f"hypothesis holds {check.get('successThreshold', 1)}x in a row within {window}s (HTTP 200 from Prometheus)"


def result(objects: list[dict[str, Any]], stack: str, workflow_name: str | None = None) -> StageResult:
    workflow = _workflow(objects, workflow_name)
    name = workflow["metadata"]["name"]
    annotations = workflow["metadata"].get("annotations") or {}
    release = annotations.get(RELEASE_ANNOTATION)
    if not release:
        raise StatusError(f"Workflow {name} has no {RELEASE_ANNOTATION} annotation: it was not made by components/ops/chaos.py")
    if not _is_true(workflow, "Accomplished"):
        raise StatusError(f"Workflow {name} has not finished (condition Accomplished is not True); read it again when it has")
    finished = (workflow.get("status") or {}).get("endTime")
    if not finished:
        raise StatusError(f"Workflow {name} is accomplished but has no status.endTime")
    nodes = [o for o in objects if o.get("kind") == "WorkflowNode"
             and ((o.get("spec") or {}).get("workflowName") == name or (o["metadata"].get("labels") or {}).get(WORKFLOW_LABEL) == name)]
    if not nodes:
        raise StatusError(f"no WorkflowNode of {name} in the input (kubectl get workflownodes -l {WORKFLOW_LABEL}={name} -o json)")
    by_template: dict[str, dict[str, Any]] = {}
    for node in nodes:
        by_template[(node.get("spec") or {}).get("templateName", "")] = node
    templates = (workflow.get("spec") or {}).get("templates") or []
    entry = (workflow.get("spec") or {}).get("entry")
    checks = []
    for template in templates:
        if template.get("templateType") != "StatusCheck":
            continue
        node = by_template.get(template["name"])
        if node is None:
            checks.append(Check(template["name"], False, "not run (the Workflow stopped before it)", _threshold(template)))
        elif _is_true(node, "Aborted"):
            checks.append(Check(template["name"], False, "failed: the failure threshold was exceeded, the Workflow aborted", _threshold(template)))
        elif _is_true(node, "Accomplished"):
            checks.append(Check(template["name"], True, "held", _threshold(template)))
        else:
            checks.append(Check(template["name"], False, "did not complete (deadline exceeded or still running)", _threshold(template)))
    if not checks:
        raise StatusError(f"Workflow {name} has no StatusCheck template: not a resilience Workflow")
    entry_node = by_template.get(entry or "")
    aborted = annotations.get(ABORT_ANNOTATION) == "true" or (entry_node is not None and _is_true(entry_node, "Aborted"))
    overran = entry_node is not None and _is_true(entry_node, "DeadlineExceed")
    if aborted or overran:
        checks.append(Check("workflow", False, "aborted" if aborted else "deadline exceeded", "runs to its end"))
    passed = all(c.passed for c in checks)
    namespace = workflow["metadata"].get("namespace", "")
    return StageResult(kind="chaos", stack=stack, release=release, finished_at=finished, passed=passed,
                       source=f"Chaos Mesh Workflow {namespace}/{name}", checks=tuple(checks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ops.chaos_results", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--status", type=Path, help="kubectl's JSON output (default: stdin)")
    parser.add_argument("--workflow", help="the Workflow's name, when the input holds several")
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (promotions/results/ is under it)")
    args = parser.parse_args(argv)
    text = args.status.read_text(encoding="utf-8") if args.status else sys.stdin.read()
    try:
        stage = result(documents(text), args.stack, args.workflow)
    except StatusError as error:
        print(f"chaos results: {error}", file=sys.stderr)
        return 1
    path = write(args.root, stage)
    for check in stage.checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.observed} ({check.threshold})")
    print(f"{'green' if stage.passed else 'RED'}: {stage.source}, release {stage.release}, written to {path}")
    return 0 if stage.passed else 2


if __name__ == "__main__":
    raise SystemExit(main())
