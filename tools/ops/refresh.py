"""Digest and release refresh: what each pinned image's registry and each vendored chart's Git repository
offer now, within the entry's update policy, verified, as a lock update for review.

Images: for every ``images`` entry, the registry is asked (tools/ops/registry.py) for the digest its pinned
tag serves now (a **moved** tag) and for its tags; the newest release the entry's ``update`` policy allows
(tools/ops/tags.py) is a **newer** candidate. Each candidate's signature is verified against the catalog
signer (``release.verify``: a keyless identity through cosign, Fulcio and Rekor); a candidate that is
unsigned or signed by anyone else is **refused** with cosign's reason and never proposed. A ``platform``
signer means the upstream publishes no signature: the candidate is proposed as "not verifiable upstream",
and the mirror's scan and platform signature stay the gate before prod can pull it.
Proposals are written as a proposed lock and a patch under ``build/refresh/``: each changed entry carries
``source: registry <host> <date> ...`` naming what was read and the verification done. The real
platform.lock.yaml is replaced only with ``--write``, and only when the whole proposed lock loads.

Charts: each chart's ``vendored.upstream.git`` is listed (``git ls-remote --tags``, or the local mirror
tools/vendor_chart.py reads), newer tags of the pinned tag's line within the policy are proposed with the
exact ``make vendor-chart`` command that vendors them (vendoring re-checks dependencies and digests).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import difflib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from components import catalog
from tools.images import release
from tools.images.release import ReleaseError, Trust
from tools.ops import tags as tagging
from tools.ops.registry import Registry, RegistryError

PROPOSED, CURRENT, REFUSED, FAILED, HELD = "proposed", "current", "refused", "failed", "held"


@dataclass(frozen=True)
class RefreshItem:
    """One pinned image and what its candidates must verify against (None: the upstream publishes no signature)."""

    key: str
    registry: str
    repository: str
    tag: str
    digest: str
    update: str
    trust: Trust | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"


def items_from_catalog(cat: catalog.Catalog, only: frozenset[str] = frozenset()) -> list[RefreshItem]:
    unknown = sorted(only - set(cat.images))
    if unknown:
        raise KeyError(f"not in platform.lock.yaml images: {', '.join(unknown)}")
    return [RefreshItem(key=key, registry=image.registry, repository=image.repository, tag=image.tag, digest=image.digest,
                        update=image.update,
                        trust=Trust(identity=image.signer.subject, issuer=image.signer.issuer) if image.signer.kind == "keyless" else None)
            for key, image in sorted(cat.images.items()) if not only or key in only]


@dataclass(frozen=True)
class Candidate:
    tag: str
    digest: str
    moved: bool
    """The pinned tag itself, now serving another digest."""


@dataclass
class Outcome:
    """What the refresh found for one image: ``state`` is proposed, current, refused, held or failed."""

    key: str
    state: str
    pinned: str
    notes: list[str] = field(default_factory=list)
    proposal: Candidate | None = None
    verification: str = ""
    source: str = ""


def not_verifiable(item: RefreshItem) -> str:
    return ("not verifiable upstream: catalog signer is platform (the upstream publishes no signature); "
            "the mirror's scan and platform signature gate it before prod pulls it")


def verify_candidate(item: RefreshItem, candidate: Candidate, insecure: bool) -> str:
    """The verification done, or ReleaseError with cosign's reason."""
    if item.trust is None:
        return not_verifiable(item)
    trust = dataclasses.replace(item.trust, insecure_registry=insecure)
    release.verify(f"{item.name}@{candidate.digest}", trust)
    return f"signature verified against {item.trust.describe()} (cosign verify)"


def check_image(item: RefreshItem, registry: Registry, today: dt.date) -> Outcome:
    """Ask the registry about one pinned image; propose the newest candidate that verifies."""
    outcome = Outcome(key=item.key, state=CURRENT, pinned=f"{item.tag}@{item.digest}")
    try:
        now = registry.digest(item.repository, item.tag)
        listed = registry.tags(item.repository)
    except RegistryError as error:
        outcome.state, outcome.notes = FAILED, [str(error)]
        return outcome
    found = tagging.candidates(item.tag, listed, item.update)
    if tagging.parse(item.tag) is None:
        outcome.notes.append(f"tag {item.tag!r} does not read as a release (prefix, numbers, variant): only a moved tag is checked")
    if found.beyond_policy:
        outcome.notes.append(f"newer beyond update policy {item.update!r} (a human's decision): {', '.join(found.beyond_policy[:5])}")
    queue: list[Candidate] = []
    if found.newest is not None:
        try:
            queue.append(Candidate(found.newest.tag, registry.digest(item.repository, found.newest.tag), moved=False))
        except RegistryError as error:
            outcome.notes.append(f"{found.newest.tag}: {error}")
    if now != item.digest:
        outcome.notes.append(f"tag {item.tag} moved: the registry serves {now}, the lock pins {item.digest}")
        queue.append(Candidate(item.tag, now, moved=True))
    refusals = []
    for candidate in queue:
        try:
            verification = verify_candidate(item, candidate, registry.insecure)
        except ReleaseError as error:
            refusals.append(f"{candidate.tag}@{candidate.digest} refused: signature does not verify against "
                            f"{item.trust.describe()}: {error}")
            continue
        what = (f"tag {item.tag} moved from {item.digest} to {candidate.digest}" if candidate.moved
                else f"{candidate.tag} (was {item.tag}, policy {item.update})")
        outcome.state, outcome.proposal, outcome.verification = PROPOSED, candidate, verification
        outcome.source = (f"registry {item.registry} {today.isoformat()}: {what}, read by python -m tools.ops.refresh "
                          f"(HEAD /v2/{item.repository}/manifests/{candidate.tag}, Docker-Content-Digest); {verification}")
        break
    outcome.notes.extend(refusals)
    if outcome.state == CURRENT and refusals:
        outcome.state = REFUSED
    elif outcome.state == CURRENT and found.beyond_policy:
        outcome.state = HELD
    return outcome


def refresh_images(items: list[RefreshItem], today: dt.date, insecure_hosts: frozenset[str] = frozenset(),
                   log: Callable[[str], None] = print) -> list[Outcome]:
    registries: dict[str, Registry] = {}
    outcomes = []
    for item in items:
        registry = registries.setdefault(item.registry, Registry(item.registry, insecure=item.registry in insecure_hosts))
        outcome = check_image(item, registry, today)
        outcomes.append(outcome)
        proposal = f" -> {outcome.proposal.tag}@{outcome.proposal.digest}" if outcome.proposal else ""
        log(f"{outcome.state.upper():8} {item.key}: {item.name}:{outcome.pinned}{proposal}")
        for note in outcome.notes:
            log(f"           {note}")
    return outcomes


class LockEditError(ValueError):
    """The lock entry could not be rewritten in place; the message names it."""


def _entry_span(lines: list[str], section: str, key: str) -> tuple[int, int]:
    """First and last+1 line of ``<section>.<key>`` in the lock text (two-space keys under a top-level section)."""
    try:
        start = lines.index(f"{section}:")
    except ValueError:
        raise LockEditError(f"the lock has no top-level '{section}:' section") from None
    begin = None
    for number in range(start + 1, len(lines)):
        line = lines[number]
        if begin is None and re.fullmatch(rf"  {re.escape(key)}:\s*", line):
            begin = number
        elif begin is not None and re.match(r"^(  )?[A-Za-z0-9]", line):
            return begin, number
        elif begin is None and re.match(r"^[A-Za-z]", line):
            break
    if begin is None:
        raise LockEditError(f"{section}.{key} is not in the lock")
    return begin, len(lines)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _scalar(text: str) -> str:
    """Plain when YAML reads it back as the same string, quoted otherwise (a tag such as ``26.3`` is a float)."""
    try:
        plain = yaml.safe_load(text) == text
    except yaml.YAMLError:
        plain = False
    return text if plain else _quoted(text)


def propose_lock(text: str, outcomes: list[Outcome], today: dt.date) -> str:
    """The lock text with every proposed image entry rewritten (tag, digest, source); comments are kept and a
    dated line says what the entry pinned before. The result must load in the catalog."""
    lines = text.splitlines()
    for outcome in outcomes:
        if outcome.proposal is None:
            continue
        begin, end = _entry_span(lines, "images", outcome.key)
        fields = {"tag": outcome.proposal.tag, "digest": outcome.proposal.digest, "source": outcome.source}
        seen = set()
        for number in range(begin + 1, end):
            match = re.match(r"^    (tag|digest|source): ", lines[number])
            if match:
                value = fields[match.group(1)]
                lines[number] = f"    {match.group(1)}: {_scalar(value) if match.group(1) != 'source' else _quoted(value)}"
                seen.add(match.group(1))
        if seen != set(fields):
            raise LockEditError(f"images.{outcome.key}: no single-line {', '.join(sorted(set(fields) - seen))} to rewrite")
        lines.insert(begin + 1, f"    # refreshed {today.isoformat()} (python -m tools.ops.refresh): was {outcome.pinned}; "
                                "the comments below describe that earlier pin")
    new = "\n".join(lines) + "\n"
    edited = ", ".join(f"images.{o.key}" for o in outcomes if o.proposal)
    try:
        parsed = catalog.parse(catalog.read_document(new))
    except yaml.YAMLError as error:
        raise LockEditError(f"{edited}: the rewritten lock does not parse (a multi-line tag, digest or source?): {error}") from None
    for outcome in outcomes:
        if outcome.proposal is not None:
            image = parsed.images[outcome.key]
            if (image.tag, image.digest, image.source) != (outcome.proposal.tag, outcome.proposal.digest, outcome.source):
                raise LockEditError(f"images.{outcome.key}: the rewritten entry does not read back as the proposal")
    return new


def write_proposal(lock: Path, outcomes: list[Outcome], out: Path, today: dt.date, write: bool) -> Path | None:
    """Proposed lock, patch and report under ``out``; the lock itself only with ``write``. Returns the patch."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "images.json").write_text(json.dumps([dataclasses.asdict(o) for o in outcomes], indent=2) + "\n", encoding="utf-8")
    if not any(o.proposal for o in outcomes):
        return None
    text = lock.read_text(encoding="utf-8")
    new = propose_lock(text, outcomes, today)
    (out / "platform.lock.yaml").write_text(new, encoding="utf-8")
    patch = out / "platform.lock.patch"
    patch.write_text("".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                  "a/platform.lock.yaml", "b/platform.lock.yaml")), encoding="utf-8")
    if write:
        tmp = lock.with_suffix(".tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(lock)
    return patch


# --- charts ---------------------------------------------------------------------------------------------

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
    unknown = sorted(only - set(cat.charts))
    if unknown:
        raise KeyError(f"not in platform.lock.yaml charts: {', '.join(unknown)}")
    proposals = []
    for key, chart in sorted(cat.charts.items()):
        if only and key not in only:
            continue
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ops.refresh", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    images = sub.add_parser("images", help="pinned tags moved, newer releases within policy, verified; a lock update for review")
    images.add_argument("--only", action="append", default=[], help="a catalog image key (repeatable)")
    images.add_argument("--lock", default=str(catalog.LOCK_FILE))
    images.add_argument("--out", default="build/refresh", help="where the proposed lock, patch and report go")
    images.add_argument("--write", action="store_true", help="also replace the lock with the proposal")
    images.add_argument("--insecure-registry", action="append", default=[], metavar="HOST",
                        help="a registry host spoken to over plain HTTP (a local test registry only)")
    charts = sub.add_parser("charts", help="newer upstream chart releases within policy, with the vendoring command")
    charts.add_argument("--only", action="append", default=[])
    charts.add_argument("--lock", default=str(catalog.LOCK_FILE))
    charts.add_argument("--mirrors", default=None, help="local Git mirrors (<owner>+<name>/repo); default CHART_GIT_MIRRORS")
    args = parser.parse_args(argv)
    today = dt.date.today()
    try:
        if args.command == "charts":
            from tools.vendor_chart import MIRRORS
            refresh_charts(Path(args.lock), Path(args.mirrors) if args.mirrors else MIRRORS, frozenset(args.only))
            return 0
        outcomes = refresh_images(items_from_catalog(catalog.load(Path(args.lock)), frozenset(args.only)), today,
                                  frozenset(args.insecure_registry))
        patch = write_proposal(Path(args.lock), outcomes, Path(args.out), today, args.write)
    except (KeyError, LockEditError, catalog.CatalogError) as error:
        print(f"refresh: {error}", file=sys.stderr)
        return 2
    counts = {s: sum(o.state == s for o in outcomes) for s in (PROPOSED, CURRENT, HELD, REFUSED, FAILED)}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    if patch:
        print(f"proposed lock: {Path(args.out) / 'platform.lock.yaml'}; patch: {patch}"
              + ("; platform.lock.yaml written" if args.write else " (platform.lock.yaml unchanged: --write replaces it)"))
    return 1 if counts[FAILED] else 0


if __name__ == "__main__":
    sys.exit(main())
