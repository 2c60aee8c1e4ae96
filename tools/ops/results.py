"""The evidence a stage's tests leave: one JSON file per kind of test and stack.

``promotions/results/<stack>/<kind>.json`` (kind ``load`` or ``chaos``) records the latest run: the
release it ran against (:func:`tools.ops.release.release_id`), when it finished, whether it passed,
and every check with what was observed against its threshold. Promotion to prod reads the staging
files and refuses when a result is missing, red, stale or about another release.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

KINDS = ("load", "chaos")
RESULTS_DIR = Path("promotions/results")


class ResultError(ValueError):
    """A results file is missing, malformed, red, stale or about another release: the message says which."""


@dataclass(frozen=True)
class Check:
    """One threshold or hypothesis: ``observed`` against ``threshold`` (free text such as ``p(95)<300ms``)."""

    name: str
    passed: bool
    observed: str
    threshold: str


@dataclass(frozen=True)
class StageResult:
    kind: Literal["load", "chaos"]
    stack: str
    release: str
    finished_at: str
    """RFC 3339, UTC (``2026-11-29T19:00:00Z``)."""
    passed: bool
    source: str
    """Where the result was read: ``k6 TestRun soma-ops/gateway-runs``, ``local load generator``..."""
    checks: tuple[Check, ...] = field(default=())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> "StageResult":
        try:
            raw: dict[str, Any] = json.loads(text)
            checks = tuple(Check(**c) for c in raw.pop("checks", ()))
            result = cls(**raw, checks=checks)
        except (ValueError, TypeError) as error:
            raise ResultError(f"{where}: not a stage result ({error})") from None
        if result.kind not in KINDS:
            raise ResultError(f"{where}: kind {result.kind!r} is not one of {', '.join(KINDS)}")
        finished_at(result, where)
        return result


def finished_at(result: StageResult, where: str) -> datetime:
    try:
        when = datetime.fromisoformat(result.finished_at.replace("Z", "+00:00"))
    except ValueError:
        raise ResultError(f"{where}: finished_at {result.finished_at!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        raise ResultError(f"{where}: finished_at {result.finished_at!r} has no time zone")
    return when.astimezone(timezone.utc)


def path_for(root: Path, stack: str, kind: str) -> Path:
    return root / RESULTS_DIR / stack / f"{kind}.json"


def write(root: Path, result: StageResult) -> Path:
    path = path_for(root, result.stack, result.kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.to_json(), encoding="utf-8")
    return path


def require_green(root: Path, stack: str, kind: str, release: str, max_age: timedelta, now: datetime) -> StageResult:
    """The stack's latest ``kind`` result, or :class:`ResultError` saying why it does not let a promotion pass."""
    path = path_for(root, stack, kind)
    if not path.is_file():
        raise ResultError(f"no {kind} result for {stack} ({path}): run the {kind} tests there first")
    result = StageResult.from_json(path.read_text(encoding="utf-8"), str(path))
    if result.stack != stack or result.kind != kind:
        raise ResultError(f"{path}: records {result.kind} on {result.stack}, not {kind} on {stack}")
    if result.release != release:
        raise ResultError(f"{path}: ran against release {result.release}, not the one being promoted ({release})")
    if not result.passed:
        failed = [c.name for c in result.checks if not c.passed]
        raise ResultError(f"{path}: the {kind} tests failed" + (f" ({', '.join(failed)})" if failed else ""))
    age = now - finished_at(result, str(path))
    if age > max_age or age < -timedelta(minutes=5):
        raise ResultError(f"{path}: finished {result.finished_at}, {age} before now; a promotion needs one newer than {max_age}")
    return result
