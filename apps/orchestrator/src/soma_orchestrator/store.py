"""The orchestrator's own tables in PostgreSQL, beside LangGraph's checkpoint tables (same database).

- ``orchestrator_workflow_versions``: every registered definition's source, per version. A run keeps the
  version it started with, so re-registering a workflow never changes a run under way (its checkpoints were
  written by that version's graph).
- ``orchestrator_runs``: one row per run: workflow, version, tenant, who started it, status, error.
- ``orchestrator_run_events``: what a run did, in order (``seq``), for the event stream and for clients that
  reconnect (SSE ``Last-Event-ID``) — kept in the database so the stream survives a restart too.

Migrations are numbered, append-only, applied at start-up under an advisory lock (as identity's), each declared
``expand`` or ``contract`` (soma_service.migrations: one release back must stay safe).
"""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from soma_service.migrations import Migration

MIGRATION_LOCK = 0x4F_52_43_48   # "ORCH", shared by every replica
TERMINAL = ("succeeded", "failed", "cancelled")

MIGRATIONS: list[Migration] = [
    Migration(1, "workflow versions, runs, run events", """
        CREATE TABLE orchestrator_workflow_versions (
            workflow_id text NOT NULL,
            version integer NOT NULL,
            tenant text NOT NULL,
            kind text NOT NULL,
            name text NOT NULL,
            source_name text NOT NULL,
            source text NOT NULL,
            registered_by text NOT NULL,
            registered_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (workflow_id, version)
        );
        CREATE TABLE orchestrator_runs (
            run_id uuid PRIMARY KEY,
            workflow_id text NOT NULL,
            version integer NOT NULL,
            tenant text NOT NULL,
            caller text NOT NULL,
            status text NOT NULL CHECK (status IN ('running', 'interrupted', 'succeeded', 'failed', 'cancelled')),
            error text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (workflow_id, version) REFERENCES orchestrator_workflow_versions (workflow_id, version)
        );
        CREATE INDEX orchestrator_runs_status ON orchestrator_runs (status);
        CREATE TABLE orchestrator_run_events (
            run_id uuid NOT NULL REFERENCES orchestrator_runs (run_id) ON DELETE CASCADE,
            seq integer NOT NULL,
            kind text NOT NULL,
            data jsonb NOT NULL,
            at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (run_id, seq)
        );
    """, change="expand"),
    Migration(2, "run ownership: which process drives a running run, until when", """
        ALTER TABLE orchestrator_runs ADD COLUMN owner text, ADD COLUMN lease_until timestamptz;
    """, change="expand"),
]


@dataclass(frozen=True)
class WorkflowVersion:
    workflow_id: str
    version: int
    tenant: str
    kind: str
    name: str
    source_name: str
    source: str
    registered_by: str
    registered_at: datetime


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    workflow_id: str
    version: int
    tenant: str
    caller: str
    status: str
    error: str | None
    created_at: datetime
    updated_at: datetime
    owner: str | None = None
    lease_until: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class RunEvent:
    seq: int
    kind: str
    data: Any
    at: datetime


def jsonable(value: Any) -> Any:
    """Run state as JSON: messages and pydantic models by their fields, anything else by ``str``."""
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "_asdict"):
        return value._asdict()
    if hasattr(value, "__dataclass_fields__"):
        return {name: getattr(value, name) for name in value.__dataclass_fields__}
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (datetime, uuid.UUID)):
        return str(value)
    return repr(value)


def open_pool(dsn: str, password: str | None, size: int) -> AsyncConnectionPool:
    """The pool LangGraph's saver needs too: autocommit, dict rows, no server-side prepared statements."""
    kwargs: dict[str, Any] = {"autocommit": True, "row_factory": dict_row, "prepare_threshold": 0}
    if password is not None:
        kwargs["password"] = password
    return AsyncConnectionPool(dsn, kwargs=kwargs, min_size=1, max_size=size, open=False, name="orchestrator")


class Store:
    def __init__(self, pool: AsyncConnectionPool):
        self.pool = pool

    async def migrate(self) -> list[int]:
        applied = []
        async with self.pool.connection() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                await conn.execute("CREATE TABLE IF NOT EXISTS orchestrator_schema_migrations (version integer PRIMARY KEY, "
                                   "description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
                done = {row["version"] async for row in await conn.execute("SELECT version FROM orchestrator_schema_migrations")}
                for step in MIGRATIONS:
                    if step.version not in done:
                        await conn.execute(step.sql, prepare=False)   # several statements: simple protocol
                        await conn.execute("INSERT INTO orchestrator_schema_migrations VALUES (%s, %s)",
                                           (step.version, step.description))
                        applied.append(step.version)
        return applied

    async def ping(self) -> bool:
        async with self.pool.connection() as conn:
            await conn.execute("SELECT 1")
        return True

    # workflows
    async def add_version(self, workflow_id: str, tenant: str, kind: str, name: str, source_name: str, source: str,
                          registered_by: str) -> WorkflowVersion:
        """The next version of ``workflow_id`` (serialised per workflow by a transaction-level advisory lock)."""
        async with self.pool.connection() as conn:
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"workflow:{workflow_id}",))
                row = await (await conn.execute(
                    "INSERT INTO orchestrator_workflow_versions (workflow_id, version, tenant, kind, name, source_name, "
                    "source, registered_by) SELECT %s, coalesce(max(version), 0) + 1, %s, %s, %s, %s, %s, %s "
                    "FROM orchestrator_workflow_versions WHERE workflow_id = %s RETURNING *",
                    (workflow_id, tenant, kind, name, source_name, source, registered_by, workflow_id))).fetchone()
        return WorkflowVersion(**row)

    async def version(self, workflow_id: str, version: int | None = None) -> WorkflowVersion | None:
        async with self.pool.connection() as conn:
            if version is None:
                cursor = await conn.execute("SELECT * FROM orchestrator_workflow_versions WHERE workflow_id = %s "
                                            "ORDER BY version DESC LIMIT 1", (workflow_id,))
            else:
                cursor = await conn.execute("SELECT * FROM orchestrator_workflow_versions WHERE workflow_id = %s "
                                            "AND version = %s", (workflow_id, version))
            row = await cursor.fetchone()
        return WorkflowVersion(**row) if row else None

    # runs
    async def create_run(self, run_id: str, workflow: WorkflowVersion, caller: str, owner: str, lease: float) -> RunRecord:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(
                "INSERT INTO orchestrator_runs (run_id, workflow_id, version, tenant, caller, status, owner, lease_until) "
                "VALUES (%s, %s, %s, %s, %s, 'running', %s, now() + make_interval(secs => %s)) RETURNING *",
                (uuid.UUID(run_id), workflow.workflow_id, workflow.version, workflow.tenant, caller, owner, lease))).fetchone()
        return _run(row)

    # ownership: a running run is driven by the process holding its lease; an expired lease is up for grabs
    async def claim_orphans(self, owner: str, lease: float) -> list[RunRecord]:
        """Take every running run whose lease ran out (its process stopped or died). Row locks make two
        replicas claiming at once take disjoint sets."""
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(
                "UPDATE orchestrator_runs SET owner = %s, lease_until = now() + make_interval(secs => %s) "
                "WHERE status = 'running' AND (lease_until IS NULL OR lease_until < now()) RETURNING *",
                (owner, lease))).fetchall()
        return [_run(row) for row in rows]

    async def renew(self, owner: str, run_ids: list[str], lease: float) -> dict[str, str]:
        """Extend the leases this process still holds; returns {run_id: status} for those (a run missing from
        the answer was taken over by another process)."""
        if not run_ids:
            return {}
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(
                "UPDATE orchestrator_runs SET lease_until = now() + make_interval(secs => %s) "
                "WHERE owner = %s AND run_id = ANY(%s) RETURNING run_id, status",
                (lease, owner, [uuid.UUID(r) for r in run_ids]))).fetchall()
        return {str(row["run_id"]): row["status"] for row in rows}

    async def release(self, owner: str, run_ids: list[str]) -> None:
        """Give the leases up at shutdown, so the next process continues the runs at once."""
        if run_ids:
            async with self.pool.connection() as conn:
                await conn.execute("UPDATE orchestrator_runs SET lease_until = NULL WHERE owner = %s AND run_id = ANY(%s)",
                                   (owner, [uuid.UUID(r) for r in run_ids]))

    async def run(self, run_id: str) -> RunRecord | None:
        try:
            key = uuid.UUID(run_id)
        except ValueError:
            return None
        async with self.pool.connection() as conn:
            row = await (await conn.execute("SELECT * FROM orchestrator_runs WHERE run_id = %s", (key,))).fetchone()
        return _run(row) if row else None

    async def set_status(self, run_id: str, status: str, error: str | None = None, *, unless: tuple[str, ...] = ()) -> bool:
        """Move a run to ``status`` unless it is already in one of ``unless`` (True when it moved)."""
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "UPDATE orchestrator_runs SET status = %s, error = %s, updated_at = now() "
                "WHERE run_id = %s AND NOT (status = ANY(%s))", (status, error, uuid.UUID(run_id), list(unless)))
            return cursor.rowcount == 1

    async def transition(self, run_id: str, status: str, kind: str, data: Any, error: str | None = None, *,
                         unless: tuple[str, ...] = (), owner: str | None = None, lease: float = 0.0) -> bool:
        """``set_status`` and its event in one transaction: a reader that sees the status sees the event.
        With ``owner``, the run's lease is taken in the same statement (resume)."""
        key = uuid.UUID(run_id)
        async with self.pool.connection() as conn:
            async with conn.transaction():
                cursor = await conn.execute(
                    "UPDATE orchestrator_runs SET status = %s, error = %s, updated_at = now(), owner = coalesce(%s, owner), "
                    "lease_until = CASE WHEN %s::text IS NULL THEN lease_until ELSE now() + make_interval(secs => %s) END "
                    "WHERE run_id = %s AND NOT (status = ANY(%s))", (status, error, owner, owner, lease, key, list(unless)))
                if cursor.rowcount != 1:
                    return False
                await conn.execute(
                    "INSERT INTO orchestrator_run_events (run_id, seq, kind, data) SELECT %s, coalesce(max(seq), 0) + 1, %s, %s "
                    "FROM orchestrator_run_events WHERE run_id = %s", (key, kind, Jsonb(jsonable(data)), key))
        return True

    # events
    async def append_event(self, run_id: str, kind: str, data: Any) -> int:
        async with self.pool.connection() as conn:
            row = await (await conn.execute(
                "INSERT INTO orchestrator_run_events (run_id, seq, kind, data) SELECT %s, coalesce(max(seq), 0) + 1, %s, %s "
                "FROM orchestrator_run_events WHERE run_id = %s RETURNING seq",
                (uuid.UUID(run_id), kind, Jsonb(jsonable(data)), uuid.UUID(run_id)))).fetchone()
        return row["seq"]

    async def events(self, run_id: str, after: int = 0) -> list[RunEvent]:
        async with self.pool.connection() as conn:
            rows = await (await conn.execute(
                "SELECT seq, kind, data, at FROM orchestrator_run_events WHERE run_id = %s AND seq > %s ORDER BY seq",
                (uuid.UUID(run_id), after))).fetchall()
        return [RunEvent(**row) for row in rows]


def _run(row: dict) -> RunRecord:
    return RunRecord(**{**row, "run_id": str(row["run_id"])})
