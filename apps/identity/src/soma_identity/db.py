"""PostgreSQL access and the schema, migrated in code when the service starts.

Migrations are numbered SQL steps applied in order, each in its own transaction, recorded in
``identity_schema_migrations``. A transaction-level advisory lock serialises replicas starting together, so
exactly one applies a step and the others find it done. Steps are append-only: never edit a released one.
Each declares ``expand`` or ``contract`` (soma_service.migrations: one release back must stay safe).
"""

from __future__ import annotations

import logging

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg_pool import ConnectionPool
from soma_service.migrations import Migration

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x50_4D_41_49_44  # any constant shared by every replica of identity

MIGRATIONS: list[Migration] = [
    Migration(1, "principals, refresh tokens, revoked access tokens", """
        CREATE TABLE principals (
            id uuid PRIMARY KEY,
            tenant text NOT NULL,
            kind text NOT NULL CHECK (kind IN ('user', 'agent', 'workflow')),
            name text NOT NULL,
            password_hash text,
            scopes text[] NOT NULL DEFAULT '{}',
            disabled boolean NOT NULL DEFAULT false,
            external_issuer text,
            external_subject text,
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (tenant, name),
            UNIQUE (external_issuer, external_subject),
            CHECK ((external_issuer IS NULL) = (external_subject IS NULL))
        );
        CREATE TABLE refresh_tokens (
            token_hash bytea PRIMARY KEY,
            family uuid NOT NULL,
            principal_id uuid NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
            audience text NOT NULL,
            scopes text[] NOT NULL,
            expires_at timestamptz NOT NULL,
            used_at timestamptz,
            revoked_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
        CREATE INDEX refresh_tokens_principal ON refresh_tokens (principal_id);
        CREATE TABLE revoked_access_tokens (
            jti text PRIMARY KEY,
            expires_at timestamptz NOT NULL
        );
    """, change="expand"),
]


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply the missing steps; returns the versions applied now."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS identity_schema_migrations ("
                     "version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        # whatever row factory the connection has (the pool's is dict_row)
        done = {row[0] for row in conn.cursor(row_factory=tuple_row).execute("SELECT version FROM identity_schema_migrations")}
        for step in MIGRATIONS:
            if step.version in done:
                continue
            conn.execute(step.sql)
            conn.execute("INSERT INTO identity_schema_migrations (version, description) VALUES (%s, %s)",
                         (step.version, step.description))
            log.info("schema migration applied", extra={"migration": step.version, "description": step.description})
            applied_now.append(step.version)
    return applied_now


def open_pool(dsn: str, password: str | None, size: int) -> ConnectionPool:
    kwargs = {"row_factory": dict_row, "autocommit": True}
    if password is not None:
        kwargs["password"] = password
    pool = ConnectionPool(dsn, kwargs=kwargs, min_size=1, max_size=size, open=False, name="identity")
    pool.open(wait=True, timeout=30)
    return pool
