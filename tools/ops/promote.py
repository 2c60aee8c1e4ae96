"""``python -m tools.ops.promote``: promote a release dev -> staging -> prod, roll a stack back, verify the log.

  promote --from dev --to staging --key K     HEAD (clean tree) whose dev render and gate pass
  promote --from staging --to prod --key K    the commit of staging's latest record, never HEAD, never rebuilt
  rollback --stack prod --to N --key K        record N's commit (its settings and digests) through the same gates
  verify-log                                   refuse an edited, reordered, removed or unsigned record, naming it
  status                                       what each stack runs (its latest record)
  init-log --public-key P                     put the public key that verifies the log in the repository

A release is a commit of this repository plus the release id of the lock at that commit
(tools/ops/release.py). Before anything is recorded, the target stack is rendered at that commit, its gate
runs (any mandatory finding stops), the mirror check runs (`make mirror-check`'s own code), the schema
migrations must keep one release back safe (tools/ops/migrations.py), every image's
signature is verified in the target registry against the signer its admission trusts, and for prod the
staging load and chaos results must be green, recent and about this release. Any failure stops with the
reason and writes nothing; success appends one signed record to promotions/log/ and sends it to the audit
pipeline. Deploying the record (``pulumi up`` of that commit) needs a cluster and the Pulumi CLI: the
command prints that step (docs/runbooks/promotion.md).
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, ContextManager

from tools.images import release as image_release
from tools.mirror import promotion as mirror_promotion
from tools.ops import audit_event, commit_tree, image_trust, promotion_log, results
from tools.ops.commit_tree import CommitTree, GateSummary, TreeError
from tools.ops.promotion_log import Entry, LogError
from tools.ops.results import ResultError

ROOT = Path(__file__).resolve().parents[2]
ROUTES = {("dev", "staging"), ("staging", "prod")}
RESULT_KINDS = ("load", "chaos")
DEFAULT_MAX_AGE = timedelta(days=7)


class PromotionError(RuntimeError):
    """The promotion or rollback stops here; the message is the reason. Nothing was recorded."""


@dataclass(frozen=True)
class Options:
    root: Path
    key: str
    """The log's signing key (cosign key file or KMS URI); its public half is promotions/log.pub."""
    who: str
    now: datetime
    mirror_report: Path
    max_age: timedelta = DEFAULT_MAX_AGE
    insecure_registry: bool = False
    audit_kafka: str | None = None
    checkout: Callable[[Path, str], ContextManager[CommitTree]] = field(default=commit_tree.checkout)
    verify: image_trust.Verify = field(default=image_release.verify)

    @property
    def build(self) -> Path:
        return self.root / "build" / "promotion"


@dataclass(frozen=True)
class Judgement:
    """What the gates found for one stack at one commit (all passed: a failure raises instead)."""

    gate: GateSummary
    migrations: str
    images: int
    trusted: tuple[str, ...]
    mirror_report: str


def who_acts(root: Path) -> str:
    """``$SOMA_RELEASE_ACTOR`` (CI sets it) or the git user's e-mail: a record always names a person or a pipeline."""
    actor = os.environ.get("SOMA_RELEASE_ACTOR", "").strip()
    if not actor:
        with contextlib.suppress(TreeError):
            actor = commit_tree.git(root, "config", "user.email")
    if not actor:
        raise PromotionError("who is promoting? set SOMA_RELEASE_ACTOR (CI) or git config user.email")
    return actor


def _sha256_file(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def judge(tree: CommitTree, stack: str, options: Options) -> Judgement:
    """Render ``stack`` at the tree's commit, gate it, check its schema steps, run the mirror check, verify every
    image's signature."""
    out = options.build / f"{stack}-{tree.commit[:12]}"
    plan = tree.render(stack, out)
    gate = tree.gate(stack, plan)
    if gate.result != "passed":
        raise PromotionError(f"the {stack} gate refused commit {tree.commit[:12]} ({gate.findings['mandatory']} mandatory "
                             "finding(s)):\n" + "\n".join(f"  - {line}" for line in gate.blocking))
    migrations, refused = tree.migration_check(options.root)
    if refused:
        raise PromotionError(f"the schema migrations at {tree.commit[:12]} would make a rollback unsafe "
                             "(expand/contract rule):\n" + "\n".join(f"  - {r}" for r in refused))
    refused = tree.mirror_check(stack, out, options.mirror_report)
    if refused:
        raise PromotionError(f"the mirror check refused {stack} at {tree.commit[:12]}:\n" + "\n".join(f"  - {r}" for r in refused))
    registry, signatures = tree.admission(stack)
    images = mirror_promotion.rendered_images(out)
    verified, problems = image_trust.check(images, tree.lock().for_registry(registry), signatures,
                                           options.insecure_registry, options.verify)
    if problems:
        raise PromotionError(f"{len(problems)} of {len(images)} image(s) of {stack} do not verify against the signer "
                             "its admission trusts:\n" + "\n".join(f"  - {p}" for p in problems))
    report = _sha256_file(options.mirror_report) if options.mirror_report.is_file() else ""
    return Judgement(gate=gate, migrations=migrations, images=len(verified), trusted=tuple(sorted({v.trusted for v in verified})),
                     mirror_report=report)


def green_results(options: Options, release: str) -> list[dict[str, str]]:
    """Staging's load and chaos results about ``release``, green and newer than the maximum age."""
    used = []
    for kind in RESULT_KINDS:
        try:
            result = results.require_green(options.root, "staging", kind, release, options.max_age, options.now)
        except ResultError as error:
            raise PromotionError(f"prod needs green {kind} results from staging: {error}") from None
        path = results.path_for(options.root, "staging", kind)
        used.append({"kind": kind, "stack": "staging", "file": str(path.relative_to(options.root)),
                     "sha256": _sha256_file(path), "finished_at": result.finished_at, "release": result.release})
    return used


def _record(kind: str, source: str, target: str, tree: CommitTree, digests: dict[str, str], release: str,
            judgement: Judgement, options: Options, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind, "from": source, "to": target, "who": options.who,
        "when": options.now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": tree.commit, "release": release, "digests": digests,
        "settings": {"file": f"Pulumi.{target}.yaml", "sha256": tree.settings_hash(target)},
        "gate": judgement.gate.as_record(),
        "signatures": {"images": judgement.images, "trusted": list(judgement.trusted)},
        "mirror_check": {"result": "passed", "report_sha256": judgement.mirror_report},
        "migrations": judgement.migrations,
        "audit_event_id": audit_event.new_event_id(),
        **extra,
    }


def _release_at(tree: CommitTree, recorded: str | None, where: str) -> tuple[dict[str, str], str]:
    digests, release = tree.release()
    if recorded is not None and release != recorded:
        raise PromotionError(f"{where} names release {recorded}, but the lock at commit {tree.commit[:12]} gives "
                             f"{release}: the record does not describe that commit; nothing is rebuilt")
    return digests, release


def promote(source: str, target: str, options: Options) -> Entry:
    if (source, target) not in ROUTES:
        raise PromotionError(f"{source} -> {target} is not a promotion route (dev -> staging, staging -> prod)")
    entries = _log(options.root)
    if source == "dev":
        try:
            commit, recorded, candidate = commit_tree.head_commit(options.root), None, {"head": True}
        except TreeError as error:
            raise PromotionError(str(error)) from None
    else:
        current = promotion_log.latest(entries, source)
        if current is None:
            raise PromotionError(f"{source} has no promotion record: promote to {source} first; {target} only takes "
                                 f"what {source} ran")
        commit, recorded = current.record["commit"], current.record["release"]
        candidate = {"record": current.sequence}
    try:
        with options.checkout(options.root, commit) as tree:
            digests, release = _release_at(tree, recorded, f"{source}'s record {candidate.get('record')}")
            extra: dict[str, Any] = {"candidate": candidate, "restores": None, "replaces": _sequence_of(entries, target)}
            if target == "prod":  # before the renders: the cheapest refusal first
                extra["results"] = green_results(options, release)
                extra["results_note"] = f"staging load and chaos results about {release}, newer than {options.max_age}"
            else:
                extra["results"], extra["results_note"] = [], f"{target} takes no load or chaos results (only prod does)"
            if source == "dev":
                extra["candidate"] = {**candidate, "dev_gate": judge_gate_only(tree, "dev", options).as_record()}
            judgement = judge(tree, target, options)
            body = _record("promote", source, target, tree, digests, release, judgement, options, **extra)
    except TreeError as error:
        raise PromotionError(str(error)) from None
    return _append(options, body)


def judge_gate_only(tree: CommitTree, stack: str, options: Options) -> GateSummary:
    """The source stack's render and gate at the candidate (dev: the commit must pass where it was built)."""
    plan = tree.render(stack, options.build / f"{stack}-{tree.commit[:12]}")
    gate = tree.gate(stack, plan)
    if gate.result != "passed":
        raise PromotionError(f"the {stack} gate refused HEAD ({tree.commit[:12]}); fix it before promoting:\n"
                             + "\n".join(f"  - {line}" for line in gate.blocking))
    return gate


def rollback(stack: str, sequence: int, options: Options) -> Entry:
    entries = _log(options.root)
    try:
        target = promotion_log.by_sequence(entries, sequence)
    except LogError as error:
        raise PromotionError(str(error)) from None
    if target.record["to"] != stack:
        raise PromotionError(f"record {sequence} deployed {target.record['to']}, not {stack}: a rollback restores what "
                             f"{stack} ran before (see `python -m tools.ops.promote status`)")
    current = promotion_log.latest(entries, stack)
    if current is not None and current.sequence == sequence:
        raise PromotionError(f"{stack} runs record {sequence} already; nothing to roll back to")
    try:
        with options.checkout(options.root, target.record["commit"]) as tree:
            digests, release = _release_at(tree, target.record["release"], f"record {sequence}")
            if current is not None:
                with options.checkout(options.root, current.record["commit"]) as running:
                    newer = running.migration_steps()
                crossed = unsafe_contracts(options.root, entries, newer, tree.migration_steps(), target)
                if crossed:
                    raise PromotionError(f"rolling {stack} back from record {current.sequence} to record {sequence} "
                                         "crosses schema contract steps its code may still need:\n"
                                         + "\n".join(f"  - {c}" for c in crossed)
                                         + "\nroll back to a release at or after the step's safe_after, or restore the "
                                         "database from a backup (docs/runbooks/promotion.md)")
            judgement = judge(tree, stack, options)
            note = (f"not required: release {release} was already promoted to prod (record {sequence}) with its staging "
                    "results" if stack == "prod" else f"{stack} takes no load or chaos results (only prod does)")
            body = _record("rollback", stack, stack, tree, digests, release, judgement, options,
                           candidate={"record": sequence}, restores=sequence,
                           replaces=current.sequence if current else None, results=[], results_note=note)
    except TreeError as error:
        raise PromotionError(str(error)) from None
    return _append(options, body)


def unsafe_contracts(root: Path, entries: list[Entry], newer: dict[str, list[dict]], older: dict[str, list[dict]],
                     target: Entry) -> list[str]:
    """Contract steps the running release applied that the target's code predates, and that are not safe for it.

    A contract step with ``safe_after`` S removed what releases before S used. Rolling back to the target is
    safe when the target is S, or descends from a commit that ran S in prod; otherwise the target's code may
    query what is gone."""
    found = []
    for app, steps in newer.items():
        known = {step["version"] for step in older.get(app, [])}
        for step in steps:
            if step["change"] != "contract" or step["version"] in known:
                continue
            safe = step["safe_after"]
            if safe == target.record["release"]:
                continue
            safe_commits = [e.record["commit"] for e in entries if e.record.get("to") == "prod" and e.record["release"] == safe]
            if any(_is_ancestor(root, commit, target.record["commit"]) for commit in safe_commits):
                continue
            found.append(f"{app} migration {step['version']} ({step['description']}): contract, safe only for releases "
                         f"from {safe} on; record {target.sequence}'s release {target.record['release']} is older")
    return found


def _is_ancestor(root: Path, ancestor: str, descendant: str) -> bool:
    done = subprocess.run(["git", "-C", str(root), "merge-base", "--is-ancestor", ancestor, descendant], capture_output=True)
    return done.returncode == 0


def _sequence_of(entries: list[Entry], stack: str) -> int | None:
    current = promotion_log.latest(entries, stack)
    return current.sequence if current else None


def _log(root: Path) -> list[Entry]:
    try:
        return promotion_log.verify(root)
    except LogError as error:
        raise PromotionError(f"the promotion log is not intact, nothing can be promoted until it is: {error}") from None


def _append(options: Options, body: dict[str, Any]) -> Entry:
    try:
        return promotion_log.append(options.root, body, options.key)
    except LogError as error:
        raise PromotionError(str(error)) from None


def deploy_steps(entry: Entry) -> str:
    record = entry.record
    folder = f"../soma-{record['to']}-{entry.sequence:06d}"
    return "\n".join([
        f"record {entry.sequence}: {record['kind']} {record['from']} -> {record['to']}, release {record['release']}, "
        f"commit {record['commit']}",
        f"  commit the log:  git add {entry.path.relative_to(entry.path.parents[2])} "
        f"{entry.path.with_suffix('.sig').relative_to(entry.path.parents[2])} && git commit -m "
        f"'promotion log: record {entry.sequence}'",
        "  deploy it (needs the cluster's credentials and the Pulumi CLI; not run here):",
        f"    git worktree add --detach {folder} {record['commit']}",
        f"    cd {folder} && pulumi up --stack {record['to']} --policy-pack policies",
        f"    git worktree remove {folder}",
    ])


def _options(args, root: Path) -> Options:
    return Options(root=root, key=args.key, who=who_acts(root), now=datetime.now(timezone.utc),
                   mirror_report=Path(args.mirror_report).resolve(), max_age=timedelta(days=args.max_age_days),
                   insecure_registry=args.insecure_registry, audit_kafka=args.audit_kafka)


def _emit(entry: Entry, kafka: str | None) -> None:
    payload = audit_event.event(entry.record, entry.digest)
    try:
        where = audit_event.send(payload, kafka)
    except Exception as error:  # noqa: BLE001 - the record stands; the event can be sent again (same event_id)
        print(f"WARNING: audit event {payload['event_id']} not sent ({error}); the record is kept; send it again with "
              f"`python -m tools.ops.promote send-event {entry.sequence}`", file=sys.stderr)
        return
    print(f"audit event {payload['event_id']} ({payload['action']}) sent to {where}")


def _positive_days(text: str) -> float:
    days = float(text)
    if not days > 0:
        raise argparse.ArgumentTypeError(f"{text}: a maximum age is a positive number of days (the results are never skipped)")
    return days


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ops.promote", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("promote", "rollback"):
        p = sub.add_parser(name)
        if name == "promote":
            p.add_argument("--from", dest="source", required=True, choices=("dev", "staging"))
            p.add_argument("--to", dest="target", required=True, choices=("staging", "prod"))
        else:
            p.add_argument("--stack", required=True, choices=("staging", "prod"))
            p.add_argument("--to", dest="record", required=True, type=int, help="the record's sequence number")
        p.add_argument("--key", required=True, help="the log's signing key (cosign key file or KMS URI)")
        p.add_argument("--mirror-report", default=str(ROOT / "build/mirror/report.json"))
        p.add_argument("--max-age-days", type=_positive_days, default=DEFAULT_MAX_AGE.days,
                       help="prod: how old staging's load and chaos results may be (default %(default)s)")
        p.add_argument("--insecure-registry", action="store_true", help="the registry speaks plain HTTP (127.0.0.1)")
        p.add_argument("--audit-kafka", default=os.environ.get("SOMA_AUDIT_KAFKA_BOOTSTRAP"),
                       help="Kafka bootstrap servers for the audit event (default $SOMA_AUDIT_KAFKA_BOOTSTRAP; else the log sink)")
    sub.add_parser("verify-log")
    sub.add_parser("status")
    s = sub.add_parser("send-event")
    s.add_argument("sequence", type=int)
    s.add_argument("--audit-kafka", default=os.environ.get("SOMA_AUDIT_KAFKA_BOOTSTRAP"))
    i = sub.add_parser("init-log")
    i.add_argument("--public-key", required=True, type=Path)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.command == "verify-log":
            entries = promotion_log.verify(root)
            print(f"{root / promotion_log.LOG_DIR}: {len(entries)} record(s), chain and signatures verified")
            return 0
        if args.command == "status":
            entries = promotion_log.verify(root)
            for stack in ("staging", "prod"):
                e = promotion_log.latest(entries, stack)
                print(f"{stack:<8} " + (f"record {e.sequence} ({e.record['kind']}, {e.record['when']}): release "
                                        f"{e.record['release']} at {e.record['commit'][:12]}" if e else "no record"))
            return 0
        if args.command == "init-log":
            print(f"{promotion_log.init(root, args.public_key)}: verifies the promotion log (commit it)")
            return 0
        if args.command == "send-event":
            entry = promotion_log.by_sequence(promotion_log.verify(root), args.sequence)
            _emit(entry, args.audit_kafka)
            return 0
        options = _options(args, root)
        entry = (promote(args.source, args.target, options) if args.command == "promote"
                 else rollback(args.stack, args.record, options))
    except (PromotionError, LogError) as error:
        print(f"{args.command}: stopped: {error}", file=sys.stderr)
        return 1
    print(deploy_steps(entry))
    _emit(entry, args.audit_kafka)
    return 0


if __name__ == "__main__":
    sys.exit(main())
