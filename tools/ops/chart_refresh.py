"""Newer upstream releases of the vendored charts, each with the ``make vendor-chart`` command that vendors it.

Each chart's ``vendored.upstream.git`` is listed (``git ls-remote --tags``, or the local mirror
tools/vendor_chart.py reads, ``CHART_GIT_MIRRORS``); newer tags of the pinned tag's line within the chart's
``update`` policy (tools/ops/tags.py) are proposed. Vendoring itself re-checks dependencies and digests.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from components import catalog
from tools.ops import tags as tagging
from tools.ops.registry import RegistryError


@dataclass(frozen=True)
class ChartProposal:
    key: str
    pinned_tag: str
    tag: str
    version: str
    command: str


def remote_tags(git: str, mirrors: Path) -> list[str]:
    """The tags of ``github.com/<owner>/<name>``: from the local mirror vendor_chart reads when there is one."""
    name = git.removeprefix("https://").removeprefix("github.com/").strip("/")
    local = mirrors / name.replace("/", "+") / "repo"
    where = str(local) if local.is_dir() else (git if git.startswith(("https://", "/")) else f"https://{git}")
    done = subprocess.run(["git", "ls-remote", "--tags", "--refs", where], capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RegistryError(f"git ls-remote --tags {where}: {done.stderr.strip()}")
    return [line.split("refs/tags/", 1)[1] for line in done.stdout.splitlines() if "refs/tags/" in line]


def chart_version(pinned_version: str, release_: tagging.Release) -> str:
    """The chart version of a release tag, written as the pinned version is (``v`` kept when it had one)."""
    return ("v" if pinned_version.startswith("v") else "") + ".".join(str(n) for n in release_.numbers)


def vendor_command(key: str, record: dict, tag: str, version: str) -> str:
    upstream = record["upstream"]
    parts = [f"make vendor-chart NAME={key} VERSION={version} GIT={upstream['git']} TAG={tag} CHART_PATH={upstream['path']}"]
    deps = [f"{d['name']}={d['git']}@{d['tag']}:{d['path']}" for d in record.get("dependencies") or []]
    if deps:
        parts.append(f'DEPS="{" ".join(deps)}"')
    steps = [s for s in record.get("packaging") or [] if s != "copy-license"]
    if steps:
        parts.append(f'STEPS="{" ".join(steps)}"')
    return " ".join(parts)


def refresh_charts(lock: Path, mirrors: Path, only: frozenset[str] = frozenset(),
                   log: Callable[[str], None] = print) -> list[ChartProposal]:
    """Newer releases of each vendored chart within its policy, each with the command that vendors it."""
    cat = catalog.load(lock)
    records = catalog.load_vendored_records(lock)
    proposals = []
    for key, chart in cat.selected("charts", only):
        record = records[key]
        pinned = record["upstream"]["tag"]
        try:
            found = tagging.candidates(pinned, remote_tags(record["upstream"]["git"], mirrors), chart.update)
        except RegistryError as error:
            log(f"FAILED   {key}: {error}")
            continue
        held = f" (beyond policy {chart.update}: {', '.join(found.beyond_policy[:3])})" if found.beyond_policy else ""
        if found.newest is None:
            log(f"{'HELD    ' if held else 'CURRENT '} {key}: {pinned}{held}")
            continue
        version = chart_version(chart.version, found.newest)
        proposal = ChartProposal(key, pinned, found.newest.tag, version, vendor_command(key, record, found.newest.tag, version))
        proposals.append(proposal)
        log(f"PROPOSED {key}: {pinned} -> {proposal.tag}{held}\n  {proposal.command}")
    return proposals
