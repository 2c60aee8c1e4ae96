"""SomaAgentHub's shared service base: every first-party service is ``create_app(...)`` + ``run(...)``."""

from .app import create_app
from .context import current_request_id
from .errors import ServiceError, error_body
from .health import ReadinessCheck
from .server import run, serve
from .settings import ServiceSettings, SettingsError

__all__ = ["create_app", "run", "serve", "ServiceSettings", "SettingsError", "ServiceError", "ReadinessCheck",
           "error_body", "current_request_id"]
