"""A schema migration step, declared expand or contract, so that one release back is always safe.

A rollback runs the previous release's code on the schema the newer release left (schemas are never
migrated down). That works only if every step a release applies is one the previous release tolerates:

- ``expand``: additive only: new tables, new nullable or defaulted columns, new indexes, relaxed
  constraints. The previous release ignores what it does not know.
- ``contract``: removes or narrows something (DROP, RENAME, SET NOT NULL, a type change). It may ship only
  once the release that stopped using the old shape (``safe_after``, its release id) runs in prod: one
  release back from the contract is then that release, which does not need what is removed.

``python -m tools.ops.migrations`` checks every app's steps against this rule and prod's promotion log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str
    change: Literal["expand", "contract"]
    safe_after: str = ""
    """For a contract step: the release id (``sha256:...``) that no longer uses what the step removes."""
