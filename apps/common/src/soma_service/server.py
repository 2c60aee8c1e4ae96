"""``run``: serve an app with uvicorn and shut down gracefully.

On SIGTERM (Kubernetes' stop signal) uvicorn stops accepting connections and waits up to
``shutdown_grace_seconds`` for in-flight requests to finish before the lifespan's shutdown runs (closing
pools, flushing telemetry). The app's readiness turns 503 the moment the signal arrives, so a keep-alive
connection probing /readyz sees the pod leaving. The pod's ``terminationGracePeriodSeconds`` must exceed
the grace period.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import uvicorn
from fastapi import FastAPI

from .settings import ServiceSettings, SettingsError, SettingsT

log = logging.getLogger("soma_service")


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI):
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: Any) -> None:
        state = self._app.state.service
        if not state.draining:
            state.draining = True
            log.info("shutdown signal received; draining", extra={"signal": sig, "in_flight": state.in_flight})
        super().handle_exit(sig, frame)


def run(app: FastAPI, settings: ServiceSettings | None = None) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; returns after the drain and the lifespan shutdown."""
    settings = settings or app.state.settings
    app.state.telemetry.install_globals()
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our JSON logging is already configured by create_app
        access_log=False,  # the service middleware writes the access log, with request and trace IDs
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        lifespan="on",
        server_header=False,
        proxy_headers=False,
    )
    _DrainingServer(config, app).run()


def serve(settings_class: type[SettingsT], build_app: Callable[[SettingsT], FastAPI]) -> int:
    """A service's ``main``: read the settings (every problem at once, on stderr, exit status 2), then serve
    ``build_app(settings)`` until SIGTERM (exit status 0)."""
    try:
        settings = settings_class.from_env()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    run(build_app(settings))
    return 0
