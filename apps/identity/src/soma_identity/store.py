"""Principals (users and service accounts) and refresh tokens in PostgreSQL.

Refresh tokens are opaque random strings; only their SHA-256 is stored, so a database dump cannot be replayed.
Each refresh rotates the token (the old one is marked used). Presenting a used one again means it was
stolen or replayed: the whole family — every token descended from the same login — is revoked.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg
from psycopg_pool import ConnectionPool

from . import passwords


class Conflict(Exception):
    """A principal with that name already exists in the tenant."""


@dataclass(frozen=True)
class Principal:
    id: uuid.UUID
    tenant: str
    kind: str
    name: str
    scopes: tuple[str, ...]
    disabled: bool
    password_hash: str | None = None
    external_issuer: str | None = None

    @classmethod
    def from_row(cls, row: dict) -> "Principal":
        return cls(row["id"], row["tenant"], row["kind"], row["name"], tuple(row["scopes"]), row["disabled"],
                   row["password_hash"], row["external_issuer"])

    def public(self) -> dict:
        return {"id": str(self.id), "tenant": self.tenant, "kind": self.kind, "name": self.name,
                "scopes": list(self.scopes), "disabled": self.disabled,
                "federated_from": self.external_issuer}


@dataclass(frozen=True)
class RefreshGrant:
    principal: Principal
    audience: str
    scopes: tuple[str, ...]
    family: uuid.UUID


class RefreshRejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Store:
    def __init__(self, pool: ConnectionPool):
        self.pool = pool

    # -- principals ------------------------------------------------------------------------------------
    def create_principal(self, tenant: str, kind: str, name: str, secret: str | None, scopes: list[str],
                         external: tuple[str, str] | None = None) -> Principal:
        principal_id = uuid.uuid4()
        secret_hash = passwords.hash_secret(secret) if secret is not None else None
        issuer, subject = external or (None, None)
        try:
            with self.pool.connection() as conn:
                row = conn.execute(
                    "INSERT INTO principals (id, tenant, kind, name, password_hash, scopes, external_issuer, external_subject)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING *",
                    (principal_id, tenant, kind, name, secret_hash, sorted(set(scopes)), issuer, subject)).fetchone()
        except psycopg.errors.UniqueViolation as exc:
            raise Conflict(f"tenant {tenant!r} already has a principal named {name!r}") from exc
        return Principal.from_row(row)

    def principal(self, principal_id: uuid.UUID) -> Principal | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM principals WHERE id = %s", (principal_id,)).fetchone()
        return Principal.from_row(row) if row else None

    def principal_by_name(self, tenant: str, name: str) -> Principal | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM principals WHERE tenant = %s AND name = %s", (tenant, name)).fetchone()
        return Principal.from_row(row) if row else None

    def principal_by_external(self, issuer: str, subject: str) -> Principal | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT * FROM principals WHERE external_issuer = %s AND external_subject = %s",
                               (issuer, subject)).fetchone()
        return Principal.from_row(row) if row else None

    def update_password_hash(self, principal_id: uuid.UUID, new_hash: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE principals SET password_hash = %s WHERE id = %s", (new_hash, principal_id))

    def disable(self, principal_id: uuid.UUID) -> bool:
        """Disable the principal and revoke all its refresh tokens; False when it does not exist."""
        with self.pool.connection() as conn, conn.transaction():
            found = conn.execute("UPDATE principals SET disabled = true WHERE id = %s RETURNING id",
                                 (principal_id,)).fetchone()
            conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE principal_id = %s AND revoked_at IS NULL",
                         (principal_id,))
        return found is not None

    # -- refresh tokens --------------------------------------------------------------------------------
    def issue_refresh_token(self, principal: Principal, audience: str, scopes: tuple[str, ...], ttl_seconds: int,
                            family: uuid.UUID | None = None, conn: psycopg.Connection | None = None) -> str:
        token = secrets.token_urlsafe(32)
        expires = datetime.now(timezone.utc) + timedelta(seconds=ttl_seconds)
        sql = ("INSERT INTO refresh_tokens (token_hash, family, principal_id, audience, scopes, expires_at)"
               " VALUES (%s, %s, %s, %s, %s, %s)")
        values = (token_hash(token), family or uuid.uuid4(), principal.id, audience, list(scopes), expires)
        if conn is not None:
            conn.execute(sql, values)
        else:
            with self.pool.connection() as own:
                own.execute(sql, values)
        return token

    def redeem_refresh_token(self, token: str, ttl_seconds: int) -> tuple[RefreshGrant, str]:
        """Exchange a refresh token for its grant and a new refresh token (same family), atomically."""
        digest = token_hash(token)
        with self.pool.connection() as conn:
            with conn.transaction():
                row = conn.execute(
                    "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = %s AND used_at IS NULL"
                    " AND revoked_at IS NULL AND expires_at > now() RETURNING family, principal_id, audience, scopes",
                    (digest,)).fetchone()
                if row is not None:
                    principal = Principal.from_row(conn.execute("SELECT * FROM principals WHERE id = %s",
                                                                (row["principal_id"],)).fetchone())
                    grant = RefreshGrant(principal, row["audience"], tuple(row["scopes"]), row["family"])
                    new_token = self.issue_refresh_token(principal, grant.audience, grant.scopes, ttl_seconds,
                                                         family=grant.family, conn=conn)
                    return grant, new_token
            known = conn.execute("SELECT family, used_at, revoked_at FROM refresh_tokens WHERE token_hash = %s",
                                 (digest,)).fetchone()
            if known is None:
                raise RefreshRejected("unknown refresh token")
            if known["used_at"] is not None and known["revoked_at"] is None:
                conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family = %s AND revoked_at IS NULL",
                             (known["family"],))
                raise RefreshRejected("refresh token reused: every token of this login is revoked")
            raise RefreshRejected("refresh token revoked" if known["revoked_at"] else "refresh token expired")

    def revoke_refresh_token(self, token: str) -> bool:
        with self.pool.connection() as conn:
            family = conn.execute("SELECT family FROM refresh_tokens WHERE token_hash = %s",
                                  (token_hash(token),)).fetchone()
            if family is None:
                return False
            conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE family = %s AND revoked_at IS NULL",
                         (family["family"],))
        return True

    # -- access tokens ---------------------------------------------------------------------------------
    def revoke_access_token(self, jti: str, expires_at: datetime) -> None:
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (jti, expires_at))
            conn.execute("DELETE FROM revoked_access_tokens WHERE expires_at < now() - interval '1 hour'")

    def access_token_revoked(self, jti: str) -> bool:
        with self.pool.connection() as conn:
            return conn.execute("SELECT 1 FROM revoked_access_tokens WHERE jti = %s", (jti,)).fetchone() is not None

    def ping(self) -> None:
        with self.pool.connection() as conn:
            conn.execute("SELECT 1")

