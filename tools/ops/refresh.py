"""Digest and release refresh: what each pinned image's registry and each vendored chart's Git repository
offer now, within the entry's update policy, verified, as a lock update for review.

Images: for every ``images`` entry, the registry is asked (tools/ops/registry.py) for the digest its pinned
tag serves now (a **moved** tag) and for its tags; the newest release the entry's ``update`` policy allows
(tools/ops/tags.py) is a **newer** candidate. Each candidate's signature is verified against the catalog
signer (``release.verify``: a keyless identity through cosign, Fulcio and Rekor); a candidate that is
unsigned or signed by anyone else is **refused** with cosign's reason and never proposed. A ``platform``
signer means the upstream publishes no signature: the candidate is proposed as "not verifiable upstream",
and the mirror's scan and platform signature stay the gate before prod can pull it.
Proposals are written as a proposed lock and a patch under ``build/refresh/`` (tools/ops/lockfile.py): each
changed entry carries ``source: registry <host> <date> ...`` naming what was read and the verification done.
The real platform.lock.yaml is replaced only with ``--write``, and only when the whole proposed lock loads.

Charts (``refresh charts``, tools/ops/chart_refresh.py): newer upstream release tags within each chart's
policy, each with the exact ``make vendor-chart`` command that vendors it.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from components import catalog
from tools.images import release
from tools.images.release import ReleaseError, Trust
from tools.ops import tags as tagging
from tools.ops.chart_refresh import refresh_charts
from tools.ops.lockfile import LockEditError, write_proposal
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
    return [RefreshItem(key=key, registry=image.registry, repository=image.repository, tag=image.tag, digest=image.digest,
                        update=image.update,
                        trust=Trust.upstream_of(image.signer))
            for key, image in cat.selected("images", only)]


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
