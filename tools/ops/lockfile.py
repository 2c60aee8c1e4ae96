"""Rewrite image entries of platform.lock.yaml in place: the refresh's proposal as a lock and a patch.

Only the entry's ``tag``, ``digest`` and ``source`` lines change; comments stay, and a dated comment says what
the entry pinned before (the comments around it describe that earlier pin). The result must load in the
catalog and read back as the proposal, or nothing is written.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from components import catalog

if TYPE_CHECKING:
    from tools.ops.refresh import Outcome


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
