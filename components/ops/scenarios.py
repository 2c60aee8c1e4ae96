"""The load-test scenarios, declared once in ``components/ops/scenarios.yaml`` and read into typed values.

One file says what is load-tested (a public route of the gateway), how hard (an open-model arrival rate held
for a duration) and what counts as passing (the SLOs: p95 and p99 latency, error rate). The k6 scripts and
TestRuns of the Ops phase (:mod:`components.ops.k6`) and the local load generator (``make load-local``) both
read it, so the cluster and a workstation test the same thing against the same thresholds.

Every problem of the file is reported at once, each naming the file and the key (``scenarios[2].slo.p99_ms``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

SCENARIOS_FILE = Path(__file__).with_name("scenarios.yaml")
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
"""A scenario's name becomes a TestRun's name and a ConfigMap key: a short DNS label."""
PATH = re.compile(r"^/v1/[A-Za-z0-9._~/-]*$")
DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h)$")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
HEADER = re.compile(r"^[a-z0-9-]+$")
RESERVED_HEADERS = ("authorization", "content-type")
"""Set by the runners (the bearer token, JSON bodies): a scenario does not name them."""


class ScenarioError(ValueError):
    """The scenarios file is unusable: the message lists every problem with its file and key."""


@dataclass(frozen=True)
class Slo:
    """The thresholds a run must meet: k6's ``http_req_duration`` p(95)/p(99) in ms and ``http_req_failed`` rate."""

    p95_ms: float
    p99_ms: float
    error_rate: float


@dataclass(frozen=True)
class Scenario:
    name: str
    route: str
    """The gateway route (apps/gateway routes.py ``Route.name``) this scenario exercises."""
    method: str
    path: str
    rate: float
    """Requests per second arriving whatever the latency (open model)."""
    duration_s: int
    slo: Slo
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> str:
        """k6's spelling of :attr:`duration_s` (``300s``)."""
        return f"{self.duration_s}s"

    def body_bytes(self) -> bytes | None:
        return None if self.body is None else json.dumps(self.body, separators=(",", ":"), sort_keys=True).encode()

    def scaled(self, factor: float) -> "Scenario":
        """The same scenario at ``factor`` times the arrival rate (a stack's scale, a workstation's share)."""
        if factor <= 0:
            raise ValueError(f"scenario {self.name}: a rate scale must be positive, not {factor}")
        return Scenario(self.name, self.route, self.method, self.path, self.rate * factor, self.duration_s, self.slo,
                        self.body, dict(self.headers))


def parse_duration(text: str) -> int:
    found = DURATION.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h")
    return int(found[1]) * {"s": 1, "m": 60, "h": 3600}[found[2]]


def _number(value: Any, where: str, problems: list[str], *, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (upper is not None and value > upper):
        bound = f" and at most {upper}" if upper is not None else ""
        problems.append(f"{where}: must be a number above 0{bound}, not {value!r}")
        return 1.0
    return float(value)


def _scenario(raw: Any, where: str, problems: list[str]) -> Scenario | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping, not {type(raw).__name__}")
        return None
    known = {"name", "route", "method", "path", "body", "headers", "rate", "duration", "slo"}
    for key in sorted(set(raw) - known):
        problems.append(f"{where}.{key}: unknown key (known: {', '.join(sorted(known))})")
    for key in ("name", "route", "method", "path", "rate", "duration", "slo"):
        if key not in raw:
            problems.append(f"{where}.{key}: required")
    name = str(raw.get("name", ""))
    if "name" in raw and not NAME.match(name):
        problems.append(f"{where}.name: {name!r} must be a DNS label of at most 40 characters (it names a TestRun)")
    method = str(raw.get("method", "GET"))
    if method not in METHODS:
        problems.append(f"{where}.method: {method!r} is not one of {', '.join(METHODS)}")
    path = str(raw.get("path", "/v1/"))
    if "path" in raw and not PATH.match(path):
        problems.append(f"{where}.path: {path!r} must be a concrete gateway path under /v1/ (no placeholders, no query)")
    if raw.get("body") is not None and method in ("GET", "DELETE"):
        problems.append(f"{where}.body: a {method} request carries no body")
    headers = raw.get("headers") or {}
    if not isinstance(headers, dict):
        problems.append(f"{where}.headers: must be a mapping of header name to value")
        headers = {}
    for key, value in headers.items():
        if not HEADER.match(str(key)) or str(key) in RESERVED_HEADERS or not isinstance(value, str):
            problems.append(f"{where}.headers.{key}: a lower-case header name with a string value, not one of "
                            f"{', '.join(RESERVED_HEADERS)} (the runners set those)")
    rate = _number(raw.get("rate", 1), f"{where}.rate", problems, upper=10_000)
    duration_s = 1
    try:
        duration_s = parse_duration(str(raw.get("duration", "1s")))
    except ValueError as error:
        problems.append(f"{where}.duration: {error}")
    slo_raw = raw.get("slo", {})
    if not isinstance(slo_raw, dict):
        problems.append(f"{where}.slo: must be a mapping with p95_ms, p99_ms and error_rate")
        slo_raw = {}
    for key in sorted(set(slo_raw) - {"p95_ms", "p99_ms", "error_rate"}):
        problems.append(f"{where}.slo.{key}: unknown key (known: error_rate, p95_ms, p99_ms)")
    slo = Slo(p95_ms=_number(slo_raw.get("p95_ms"), f"{where}.slo.p95_ms", problems),
              p99_ms=_number(slo_raw.get("p99_ms"), f"{where}.slo.p99_ms", problems),
              error_rate=_number(slo_raw.get("error_rate"), f"{where}.slo.error_rate", problems, upper=1))
    if slo.p95_ms > slo.p99_ms:
        problems.append(f"{where}.slo: p95_ms {slo.p95_ms:g} is above p99_ms {slo.p99_ms:g}")
    return Scenario(name, str(raw.get("route", "")), method, path, rate, duration_s, slo, raw.get("body"),
                    {str(k): str(v) for k, v in headers.items()})


def parse(text: str, source: str) -> tuple[Scenario, ...]:
    """The scenarios of ``text`` (the file's content); :class:`ScenarioError` lists every problem, naming ``source``."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f"{source}: not YAML ({error})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("scenarios"), list) or not raw["scenarios"]:
        raise ScenarioError(f"{source}: must hold `scenarios:`, a non-empty list")
    unknown = sorted(set(raw) - {"scenarios"})
    problems = [f"{key}: unknown top-level key" for key in unknown]
    scenarios = [s for i, item in enumerate(raw["scenarios"]) if (s := _scenario(item, f"scenarios[{i}]", problems))]
    seen: set[str] = set()
    for i, scenario in enumerate(scenarios):
        if scenario.name in seen:
            problems.append(f"scenarios[{i}].name: {scenario.name!r} is declared twice")
        seen.add(scenario.name)
    if problems:
        raise ScenarioError(f"{source}: " + "; ".join(problems))
    return tuple(scenarios)


def load(path: Path = SCENARIOS_FILE) -> tuple[Scenario, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"{path}: cannot be read ({error.strerror})") from None
    return parse(text, str(path))


def select(scenarios: tuple[Scenario, ...], names: tuple[str, ...] | list[str]) -> tuple[Scenario, ...]:
    """The scenarios named (all of them when ``names`` is empty); an unknown name is an error naming the known ones."""
    if not names:
        return scenarios
    known = {s.name: s for s in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ScenarioError(f"no scenario {', '.join(unknown)} in {SCENARIOS_FILE.name} (known: {', '.join(known)})")
    return tuple(known[n] for n in names)
