"""The promotion log: which release each stack runs, as an append-only, hash-chained, signed list of records.

``promotions/log/000001.json`` ... one record per promotion or rollback, in its canonical bytes (JSON, keys
sorted, two-space indent, ASCII), and beside it ``000001.sig``: a cosign ``sign-blob`` signature over exactly
those bytes. Each record holds ``previous``, the sha256 of the previous record's bytes, so editing,
reordering or removing a record breaks the chain at a named place; the public key that verifies every
signature is ``promotions/log.pub``, in the repository. A stack's deployed release is the commit its latest
record names (the "environment pointer"): nothing else in the repository says what a stack runs.

Removing the newest record leaves a valid chain; the repository's history does not: :func:`verify` also
refuses any commit that deleted or changed a committed record.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.images.release import ReleaseError, cosign
from tools.mirror.report import key_fingerprint

LOG_DIR = Path("promotions/log")
PUBLIC_KEY = Path("promotions/log.pub")
KINDS = ("promote", "rollback")


class LogError(ValueError):
    """The log is not intact, or a record cannot be appended: the message names the record and what is wrong."""


def canonical(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One verified record: its content, the hash of its bytes (what the next record chains to) and its file."""

    record: dict[str, Any]
    digest: str
    path: Path

    @property
    def sequence(self) -> int:
        return int(self.record["sequence"])


def record_path(root: Path, sequence: int) -> Path:
    return root / LOG_DIR / f"{sequence:06d}.json"


def _signature_path(path: Path) -> Path:
    return path.with_suffix(".sig")


def _verify_signature(path: Path, public_key: Path) -> str:
    """Empty when cosign accepts ``path``'s signature with ``public_key``; otherwise why not."""
    signature = _signature_path(path)
    if not signature.is_file():
        return f"{path.name}: unsigned (no {signature.name})"
    try:
        cosign("verify-blob", path.name, "verify-blob", "--key", str(public_key), "--signature", str(signature),
               "--insecure-ignore-tlog=true", str(path))
    except ReleaseError as error:
        return f"{path.name}: its signature does not verify with {public_key} ({str(error).splitlines()[-1][-200:]})"
    return ""


def read(root: Path, *, check_signatures: bool = True) -> list[Entry]:
    """Every record, verified: file names, sequence, chain, canonical bytes and (by default) signatures.

    Raises :class:`LogError` naming the first record that breaks the log."""
    folder = root / LOG_DIR
    if not folder.is_dir():
        return []
    public_key = root / PUBLIC_KEY
    files = sorted(folder.glob("*.json"))
    orphans = sorted(p.name for p in folder.glob("*.sig") if not p.with_suffix(".json").exists())
    if orphans:
        raise LogError(f"{orphans[0]}: its record {Path(orphans[0]).with_suffix('.json')} was removed")
    strays = sorted(p.name for p in folder.iterdir() if p.suffix not in (".json", ".sig"))
    if strays:
        raise LogError(f"{folder}: {', '.join(strays)} is not a record or a record's signature")
    if files and check_signatures and not public_key.is_file():
        raise LogError(f"{public_key} is missing: the log's records cannot be verified (python -m tools.ops.promote init-log)")
    entries: list[Entry] = []
    previous = ""
    for index, path in enumerate(files, start=1):
        if path.name != record_path(root, index).name:
            raise LogError(f"{path.name}: expected {record_path(root, index).name} next; record {index} was removed "
                           "or the records were renumbered")
        data = path.read_bytes()
        try:
            record = json.loads(data)
        except ValueError as error:
            raise LogError(f"{path.name}: not JSON ({error})") from None
        if not isinstance(record, dict) or canonical(record) != data:
            raise LogError(f"{path.name}: not in canonical form: the record was edited after it was signed")
        if record.get("sequence") != index:
            raise LogError(f"{path.name}: says sequence {record.get('sequence')!r}, its place in the log is {index}: "
                           "records were reordered")
        if record.get("previous") != previous:
            raise LogError(f"{path.name}: chains to {record.get('previous')!r}, but record {index - 1}'s bytes hash to "
                           f"{previous!r}: a record before it was edited, removed or reordered")
        if record.get("kind") not in KINDS:
            raise LogError(f"{path.name}: kind {record.get('kind')!r} is not one of {', '.join(KINDS)}")
        if check_signatures and (problem := _verify_signature(path, public_key)):
            raise LogError(problem)
        previous = sha256(data)
        entries.append(Entry(record, previous, path))
    return entries


def history_problems(root: Path) -> list[str]:
    """Commits that deleted or changed a committed record or the log's key: append-only means neither happens."""
    if not (root / ".git").exists():
        return []
    done = subprocess.run(["git", "-C", str(root), "log", "--format=%h %s", "--diff-filter=DMR", "--name-status", "--",
                           str(LOG_DIR), str(PUBLIC_KEY)], capture_output=True, text=True)
    if done.returncode != 0:
        return [f"git log over {LOG_DIR} failed: {done.stderr.strip()}"]
    problems, commit = [], ""
    for line in done.stdout.splitlines():
        if not line.strip():
            continue
        if line[0] in "DMR" and "\t" in line:
            status, _, name = line.partition("\t")
            problems.append(f"{name.split(chr(9))[0]}: {'deleted' if status == 'D' else 'changed'} by commit {commit}")
        else:
            commit = line
    return problems


def missing_commits(root: Path, entries: list[Entry]) -> list[str]:
    """Records naming a commit the repository does not hold: such a release can no longer be deployed or rolled
    back to (history rewritten, or a record written from another repository)."""
    if not entries or not (root / ".git").exists():
        return []
    asked = "".join(f"{e.record.get('commit', '')}^{{commit}}\n" for e in entries)
    done = subprocess.run(["git", "-C", str(root), "cat-file", "--batch-check"], input=asked, capture_output=True, text=True)
    answers = done.stdout.splitlines()
    return [f"{e.path.name}: names commit {e.record.get('commit')!r}, which this repository does not have"
            for e, answer in zip(entries, answers) if answer.endswith(" missing") or " commit " not in answer]


def verify(root: Path) -> list[Entry]:
    """The whole log, or :class:`LogError` naming what breaks it (chain, signatures, repository history)."""
    entries = read(root)
    problems = history_problems(root) + missing_commits(root, entries)
    if problems:
        raise LogError("the log is append-only, but:\n" + "\n".join(f"  - {p}" for p in problems))
    return entries


def latest(entries: list[Entry], stack: str) -> Entry | None:
    """The record that says what ``stack`` runs now (its latest promotion or rollback)."""
    return next((e for e in reversed(entries) if e.record.get("to") == stack), None)


def by_sequence(entries: list[Entry], sequence: int) -> Entry:
    for entry in entries:
        if entry.sequence == sequence:
            return entry
    raise LogError(f"no record {sequence} in the log (it holds 1..{len(entries)})")


def init(root: Path, public_key: Path) -> Path:
    """Put the public key that verifies the log in the repository; refused once records exist under another key."""
    target = root / PUBLIC_KEY
    new = public_key.read_text(encoding="utf-8")
    key_fingerprint(new)  # raises for anything but a PEM public key
    if target.exists() and read(root, check_signatures=False):
        if key_fingerprint(target.read_text(encoding="utf-8")) != key_fingerprint(new):
            raise LogError(f"{target} already verifies {len(read(root, check_signatures=False))} records; "
                           "a new key would orphan them")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(new, encoding="utf-8")
    return target


def append(root: Path, body: dict[str, Any], key: str) -> Entry:
    """Sign ``body`` as the next record and add it; the signature must verify with the repository's key first.

    ``body`` gets ``sequence`` and ``previous``; nothing is written when signing or verifying fails, or when
    another record took the sequence meanwhile. The chain is checked again here; the signatures are the
    caller's to verify first (:func:`verify`: promotion does, before any gate runs)."""
    entries = read(root, check_signatures=False)
    public_key = root / PUBLIC_KEY
    if not public_key.is_file():
        raise LogError(f"{public_key} is missing: install the log's public key first (python -m tools.ops.promote init-log)")
    sequence = len(entries) + 1
    record = {**body, "sequence": sequence, "previous": entries[-1].digest if entries else ""}
    data = canonical(record)
    target = record_path(root, sequence)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        staged = Path(scratch) / target.name
        staged.write_bytes(data)
        try:
            cosign("sign-blob", target.name, "sign-blob", "--yes", "--key", key, "--tlog-upload=false",
                   "--output-signature", str(_signature_path(staged)), str(staged))
        except ReleaseError as error:
            raise LogError(f"signing {target.name} with {key} failed: {error}") from None
        if problem := _verify_signature(staged, public_key):
            raise LogError(f"{problem}: --key is not the private half of {public_key}; nothing written")
        try:
            os.link(_signature_path(staged), _signature_path(target))
        except FileExistsError:
            raise LogError(f"{_signature_path(target).name} appeared meanwhile: another promotion was recorded; "
                           "run again") from None
        try:
            os.link(staged, target)
        except FileExistsError:
            os.unlink(_signature_path(target))
            raise LogError(f"{target.name} appeared meanwhile: another promotion was recorded; run again") from None
    return Entry(record, sha256(data), target)
