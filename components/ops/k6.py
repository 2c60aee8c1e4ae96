"""k6 scripts and TestRun specs from the scenarios (components/ops/scenarios.yaml).

One script per scenario: the constant-arrival-rate executor (an open model: requests keep arriving at the
declared rate however slow the answers, so a slow gateway shows as latency and dropped iterations instead of
a politely reduced load) and the scenario's SLOs as k6 thresholds, so that k6 itself fails the run (exit code,
the TestRun's stage ``error``) when one is missed. The end-of-test summary is written as JSON to stdout by
``handleSummary``: the runner pod's log is the evidence ``tools/ops/k6_summary.py`` turns into a stage result.
"""
from __future__ import annotations

import copy
import json
import math
from typing import Any, Mapping

from components.kit.security import container_security_context, pod_security_context
from components.ops.scenarios import Scenario

BASE_URL_ENV = "SOMA_BASE_URL"
TOKEN_ENV = "SOMA_LOAD_TOKEN"
SUMMARY_MARKER = "K6_SUMMARY_JSON "
"""Prefix of the summary line in the runner's log (the text summary goes to stderr, the JSON line to stdout)."""
MAX_VUS = 500
"""Upper bound on the VUs one scenario may use: with the rate and p99 it bounds the runner's memory."""


def arrival(rate: float) -> tuple[int, str]:
    """k6's ``rate`` (an integer) and ``timeUnit`` for ``rate`` per second: per second when whole, else per minute
    (or per hour) rounded to the nearest whole request, never zero."""
    if float(rate).is_integer():
        return int(rate), "1s"
    per_minute = rate * 60
    if per_minute >= 10:
        return max(1, round(per_minute)), "1m"
    return max(1, round(rate * 3600)), "1h"


def virtual_users(scenario: Scenario) -> tuple[int, int]:
    """Pre-allocated and maximum VUs: enough to keep ``rate`` arriving while each request takes up to the p99 SLO
    (Little's law, doubled), at least 2; the maximum four times that, capped by :data:`MAX_VUS`."""
    busy = scenario.rate * scenario.slo.p99_ms / 1000
    pre = min(MAX_VUS, max(2, math.ceil(2 * busy)))
    return pre, min(MAX_VUS, max(pre, 4 * pre))


def thresholds(scenario: Scenario) -> dict[str, list[str]]:
    slo = scenario.slo
    return {"http_req_duration": [f"p(95)<{slo.p95_ms:g}", f"p(99)<{slo.p99_ms:g}"],
            "http_req_failed": [f"rate<{slo.error_rate:g}"]}


def options(scenario: Scenario) -> dict[str, Any]:
    rate, unit = arrival(scenario.rate)
    pre, most = virtual_users(scenario)
    return {
        "scenarios": {scenario.name: {"executor": "constant-arrival-rate", "rate": rate, "timeUnit": unit,
                                      "duration": scenario.duration, "preAllocatedVUs": pre, "maxVUs": most}},
        "thresholds": thresholds(scenario),
        "summaryTrendStats": ["avg", "min", "med", "max", "p(90)", "p(95)", "p(99)", "count"],
    }


def script(scenario: Scenario) -> str:
    """The k6 script of ``scenario`` (JavaScript, deterministic: the ConfigMap only changes with the scenarios)."""
    headers: dict[str, str] = dict(sorted(scenario.headers.items()))
    body = scenario.body_bytes()
    if body is not None:
        headers["content-type"] = "application/json"
    return f"""// Generated from components/ops/scenarios.yaml (scenario {scenario.name}) by components/ops/k6.py: do not edit.
// {scenario.method} {scenario.path} (gateway route {scenario.route}) at {scenario.rate:g}/s for {scenario.duration}.
import http from 'k6/http';

const BASE_URL = __ENV.{BASE_URL_ENV};
const TOKEN = __ENV.{TOKEN_ENV} || '';

export const options = {json.dumps(options(scenario), indent=2)};

const HEADERS = Object.assign({json.dumps(headers)}, TOKEN ? {{ authorization: `Bearer ${{TOKEN}}` }} : {{}});
const BODY = {json.dumps(body.decode()) if body is not None else 'null'};

export default function () {{
  http.request({json.dumps(scenario.method)}, `${{BASE_URL}}{scenario.path}`, BODY, {{ headers: HEADERS, tags: {{ scenario_route: {json.dumps(scenario.route)} }} }});
}}

export function handleSummary(data) {{
  return {{ stdout: '{SUMMARY_MARKER}' + JSON.stringify(data) + '\\n' }};
}}
"""


def script_file(scenario: Scenario) -> str:
    return f"{scenario.name}.js"


K6_UID = 12345
"""The user grafana/k6's image runs as (its Dockerfile at v2.2.0: ``USER 12345``)."""
STARTER_UID = 65532
"""The user the operator's starter image runs as (Dockerfile.starter at v1.6.0: ``USER 65532:65532``)."""
TMP = {"volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
       "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]}
"""The initializer archives the script to /tmp (``k6 archive -O /tmp/...``): the root filesystem stays read-only."""


def _pod(uid: int, labels: Mapping[str, str], service_account: str) -> dict[str, Any]:
    """What every pod of a TestRun shares: non-root with the image's own UID, RuntimeDefault seccomp, read-only root,
    no capabilities, a ServiceAccount of its own without a token (the pods never call the Kubernetes API)."""
    return {
        "metadata": {"labels": dict(labels)},
        "serviceAccountName": service_account,
        "automountServiceAccountToken": "false",
        "securityContext": pod_security_context(uid),
        "containerSecurityContext": container_security_context(uid=uid),
        "imagePullPolicy": "IfNotPresent",
    }


def testrun_spec(scenario: Scenario, *, config_map: str, base_url: str, runner_image: str, starter_image: str,
                 token_secret: tuple[str, str] | None, labels: Mapping[str, Mapping[str, str]], service_account: str,
                 runner_resources: Mapping[str, Any]) -> dict[str, Any]:
    """The ``k6.io/v1alpha1`` TestRun spec (camelCase, as the CRD reads it) that runs ``scenario``'s script.

    No ``cleanup``: the runner's pod, and its log with the summary line, stays until the TestRun is deleted (which is
    also how a run is repeated: docs/load-tests.md). One runner (``parallelism: 1``): the rates here are far below one k6 process's capacity, and one runner
    keeps the percentiles exact (k6 does not merge percentiles across runners). Every pod the operator makes
    for it (initializer, runner, starter and stopper) runs a pinned image, hardened as :func:`_pod` says;
    only the runner gets the bearer token. ``labels``: the pod labels of ``runner``, ``initializer``, ``starter``
    (the flows select them).
    """
    env = [{"name": BASE_URL_ENV, "value": base_url}]
    runner_env = list(env)
    if token_secret is not None:
        runner_env.append({"name": TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": token_secret[0], "key": token_secret[1]}}})
    return {
        "parallelism": 1,
        "script": {"configMap": {"name": config_map, "file": script_file(scenario)}},
        "arguments": f"--tag testid={scenario.name} --no-color",
        "runner": {**_pod(K6_UID, labels["runner"], service_account), **copy.deepcopy(TMP), "image": runner_image, "env": runner_env,
                   "resources": dict(runner_resources)},
        # the initializer only inspects and archives the script: same image, no token
        "initializer": {**_pod(K6_UID, labels["initializer"], service_account), **copy.deepcopy(TMP), "image": runner_image, "env": env,
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "200m", "memory": "256Mi"}}},
        # the starter (and the stopper, from the same image) only PATCHes the runners' status over HTTP
        "starter": {**_pod(STARTER_UID, labels["starter"], service_account), "image": starter_image,
                    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}}},
    }
