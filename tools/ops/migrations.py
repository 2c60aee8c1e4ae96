"""``python -m tools.ops.migrations``: every app's schema steps against the expand/contract rule.

A rollback runs the previous release on the schema the newer one left, so (soma_service.migrations):
- an ``expand`` step may not contain destructive DDL: DROP (other than DROP NOT NULL), RENAME, SET NOT NULL,
  a column type change, TRUNCATE, or a new NOT NULL column without a DEFAULT (the previous release's
  inserts would fail);
- a ``contract`` step must name ``safe_after``, a release id that prod's promotion log shows was promoted to
  (or rolled back to in) prod: the release that stopped using what the step removes;
- versions run 1, 2, 3... (steps are append-only).
Exit 1 with each problem named by app and version.
"""
from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

from tools.ops import promotion_log

ROOT = Path(__file__).resolve().parents[2]
APPS = {"identity": "soma_identity.db", "orchestrator": "soma_orchestrator.store"}
"""Each app with a PostgreSQL schema -> the module holding its ``MIGRATIONS``."""
RELEASE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Step:
    """What the checker reads of a ``soma_service.migrations.Migration`` (any object with these fields)."""

    version: int
    description: str
    sql: str
    change: str
    safe_after: str = ""


def _statements(sql: str) -> list[str]:
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)
    return [" ".join(s.split()) for s in without_comments.split(";") if s.strip()]


def _clauses(statement: str) -> list[str]:
    """The comma-separated actions of an ALTER TABLE (commas inside parentheses do not split)."""
    parts, depth, current = [], 0, ""
    for char in statement:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


_DESTRUCTIVE = [
    (re.compile(r"\bDROP\b(?!\s+NOT\s+NULL)", re.I), "DROP removes what the previous release may use"),
    (re.compile(r"\bRENAME\b", re.I), "RENAME breaks the previous release's queries"),
    (re.compile(r"\bSET\s+NOT\s+NULL\b", re.I), "SET NOT NULL breaks the previous release's inserts"),
    (re.compile(r"\bALTER\s+COLUMN\s+\S+\s+(SET\s+DATA\s+)?TYPE\b", re.I), "a column type change"),
    (re.compile(r"\bTRUNCATE\b", re.I), "TRUNCATE destroys data"),
]


def destructive(sql: str) -> list[str]:
    """Why ``sql`` is not an expand step (empty when it only adds)."""
    found = []
    for statement in _statements(sql):
        for pattern, why in _DESTRUCTIVE:
            match = pattern.search(statement)
            if match:
                found.append(f"{why}: {statement[max(0, match.start() - 40):match.end() + 40].strip()}")
        if re.match(r"ALTER\s+TABLE\b", statement, re.I):
            for clause in _clauses(statement):
                if (re.search(r"\bADD\b(\s+COLUMN)?", clause, re.I) and re.search(r"\bNOT\s+NULL\b", clause, re.I)
                        and not re.search(r"\bDEFAULT\b", clause, re.I) and not re.search(r"\bCONSTRAINT\b", clause, re.I)):
                    found.append(f"a NOT NULL column without a DEFAULT breaks the previous release's inserts: {clause.strip()}")
    return found


def problems(app: str, steps: Sequence[Step], prod_releases: set[str]) -> list[str]:
    found = []
    for index, step in enumerate(steps, start=1):
        where = f"{app} migration {step.version} ({step.description})"
        if step.version != index:
            found.append(f"{where}: versions must run 1, 2, 3...; expected {index}")
        if step.change == "expand":
            found += [f"{where}: declared expand, but {why}" for why in destructive(step.sql)]
            if step.safe_after:
                found.append(f"{where}: safe_after is for contract steps only")
        elif step.change == "contract":
            if not RELEASE.match(step.safe_after or ""):
                found.append(f"{where}: a contract step names safe_after, the release id (sha256:...) that stopped "
                             "using what it removes")
            elif step.safe_after not in prod_releases:
                found.append(f"{where}: safe_after {step.safe_after} has not run in prod (promotions/log); ship this "
                             "contract step only after that release is promoted to prod")
        else:
            found.append(f"{where}: change must be expand or contract, got {step.change!r}")
    return found


def prod_releases(root: Path) -> set[str]:
    """Every release the promotion log shows running in prod (promoted or rolled back to)."""
    return {e.record["release"] for e in promotion_log.read(root) if e.record.get("to") == "prod"}


def app_steps(root: Path = ROOT) -> dict[str, list[Step]]:
    """The real ``MIGRATIONS`` of each app, imported from ``apps/<app>/src`` of ``root``."""
    for source in sorted((root / "apps").glob("*/src")):
        if str(source) not in sys.path:
            sys.path.insert(0, str(source))
    steps = {}
    for app, module in APPS.items():
        loaded = importlib.import_module(module)
        steps[app] = [Step(m.version, m.description, m.sql, m.change, m.safe_after) for m in loaded.MIGRATIONS]
    return steps


def check(steps: dict[str, Iterable[Step]], releases: set[str]) -> list[str]:
    return [p for app, app_steps_ in steps.items() for p in problems(app, list(app_steps_), releases)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ops.migrations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-root", type=Path, default=ROOT, help="the repository whose promotions/log says what prod ran")
    parser.add_argument("--list", action="store_true", help="print every app's steps as JSON (what a rollback compares)")
    args = parser.parse_args(argv)
    if args.list:
        print(json.dumps({app: [asdict(step) for step in steps] for app, steps in app_steps().items()}))
        return 0
    try:
        releases = prod_releases(args.log_root)
    except promotion_log.LogError as error:
        print(f"migrations: the promotion log is not intact: {error}", file=sys.stderr)
        return 2
    steps = app_steps()
    found = check(steps, releases)
    for line in found:
        print(f"REFUSED {line}")
    print(f"{sum(len(s) for s in steps.values())} migration step(s) in {', '.join(steps)}: "
          + ("refused" if found else "one release back stays safe"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
