"""Assembles identity on the service base: Vault signer, PostgreSQL store, API, readiness checks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import logging

import hvac
import psycopg
import psycopg_pool
import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from soma_service import ReadinessCheck, create_app
from soma_service.errors import error_response

from . import db
from .api import Runtime, build_router
from .federation import Federation
from .keys import TransitSigner
from .settings import IdentitySettings
from .store import Store
from .tokens import TokenService

log = logging.getLogger(__name__)


def vault_client(settings: IdentitySettings) -> hvac.Client:
    """A Vault client: a token from a mounted file (dev, tests), or Kubernetes auth with the pod's token.

    Over TLS every call (the login, transit's sign and key reads) verifies Vault's certificate against
    ``vault_ca_file`` alone, hostname included: an explicit ``verify`` also keeps hvac from reading
    ``VAULT_CACERT``/``VAULT_CAPATH`` and requests from reading ``REQUESTS_CA_BUNDLE``."""
    if settings.vault_token is not None:
        return hvac.Client(url=settings.vault_addr, token=settings.vault_token.get_secret_value(), verify=settings.vault_verify)
    client = hvac.Client(url=settings.vault_addr, verify=settings.vault_verify)
    client.auth.kubernetes.login(settings.vault_kubernetes_role,
                                 settings.vault_service_account_token_path.read_text().strip(),
                                 mount_point=settings.vault_kubernetes_mount)
    return client


def signer_for(settings: IdentitySettings, client: hvac.Client) -> TransitSigner:
    return TransitSigner(client, key_name=settings.signing_key_name, algorithm=settings.signing_algorithm,
                         mount=settings.vault_transit_mount, publish_delay=settings.key_publish_delay_seconds,
                         cache_seconds=settings.jwks_cache_seconds)


def build_app(settings: IdentitySettings, **base_options) -> FastAPI:
    runtime = Runtime()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        signer = signer_for(settings, await run_in_threadpool(vault_client, settings))
        password = settings.database_password.get_secret_value() if settings.database_password else None
        pool = await run_in_threadpool(db.open_pool, settings.database_dsn, password, settings.database_pool_size)
        try:
            with pool.connection() as conn:
                await run_in_threadpool(db.migrate, conn)
            store = Store(pool)
            runtime.store = store
            runtime.federation = Federation(settings, store) if settings.federation_enabled else None
            runtime.tokens = app.state.tokens = TokenService(settings, signer, store)
            app.state.service.add_check(ReadinessCheck("postgresql", store.ping))
            app.state.service.add_check(ReadinessCheck(
                "vault-signing-key", lambda: bool(signer.keyring(fresh=True).versions)))
            yield
        finally:
            await run_in_threadpool(pool.close)

    app = create_app(settings, lifespan=lifespan, routers=[build_router(settings, runtime)], title="SomaAgentHub identity",
                      description="Short-lived JWTs for users and service accounts, signed in Vault; JWKS; principals.",
                      **base_options)
    _unavailable_dependencies_are_503(app)
    return app


def _unavailable_dependencies_are_503(app: FastAPI) -> None:
    """Vault or PostgreSQL down: 503 naming which (a retry may work), not a generic 500."""

    @app.exception_handler(requests.exceptions.ConnectionError)
    @app.exception_handler(requests.exceptions.Timeout)
    @app.exception_handler(hvac.exceptions.VaultDown)
    async def _vault_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("Vault unreachable", extra={"error": f"{type(exc).__name__}: {exc}"})
        return error_response(503, "vault_unavailable", "the signing service (Vault) is unreachable; retry later")

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("PostgreSQL unreachable", extra={"error": f"{type(exc).__name__}: {exc}"})
        return error_response(503, "database_unavailable", "the database is unreachable; retry later")
