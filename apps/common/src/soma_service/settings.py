"""Typed service settings read from the environment and from mounted secret files.

Why not plain environment variables for everything: environment variables leak (``/proc/<pid>/environ``,
crash dumps, ``kubectl describe``, child processes). The platform mounts secrets as files (Vault → External
Secrets → a Secret volume), so a setting whose type is :class:`pydantic.SecretStr` is read **only** from a file,
and a value for it found in an environment variable is refused with an error naming the variable, rather than
silently used.

Rules, for a settings class with ``env_prefix = "SOMA_"``:

* an ordinary field ``http_port`` comes from ``SOMA_HTTP_PORT`` (or its default);
  lists, dicts and nested models are written as JSON;
* a secret field ``db_password`` comes from the file named by ``SOMA_DB_PASSWORD_FILE``, or else from
  ``<secrets_dir>/db_password`` (``secrets_dir`` is itself a setting, ``SOMA_SECRETS_DIR``); one trailing
  newline is stripped;
* ``SOMA_DB_PASSWORD`` being set at all is an error;
* every problem is reported at once, each naming the variable or file it came from.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

DEFAULT_SECRETS_DIR = Path("/var/run/secrets/soma")
# Kubernetes injects these for every Service in the namespace (a Service `soma-x` → SOMA_X_SERVICE_HOST, …)
# unless the pod sets enableServiceLinks: false; they are not typos of a setting.
KUBERNETES_SERVICE_LINK = re.compile(r"_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)?)$")

SettingsT = TypeVar("SettingsT", bound="ServiceSettings")


class SettingsError(ValueError):
    """Configuration that cannot start the service; ``problems`` lists every one, each naming its source."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid service settings:\n  " + "\n  ".join(problems))


class ServiceSettings(BaseModel):
    """What every service needs; a service subclasses it and adds its own fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    env_prefix: ClassVar[str] = "SOMA_"

    service_name: str = Field(min_length=1, description="service.name in telemetry and logs")
    service_version: str = "0.0.0"
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=1, le=65535)
    log_level: typing.Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/gRPC endpoint of the platform collector, e.g. http://otel-collector.observability:4317; "
        "unset = no export (JSON logs still go to stdout)",
    )
    otlp_export_interval_ms: int = Field(default=15000, ge=100)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, description="how long in-flight requests may drain")
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, description="per dependency check in /readyz")
    secrets_dir: Path = DEFAULT_SECRETS_DIR

    @classmethod
    def from_env(cls: type[SettingsT], environ: Mapping[str, str] | None = None, **overrides: Any) -> SettingsT:
        """Build the settings from ``environ`` (default ``os.environ``) and secret files; ``overrides`` win."""
        environ = os.environ if environ is None else environ
        problems: list[str] = []
        reported: set[str] = set()  # fields whose problem is already told; pydantic's "missing" would repeat it
        values: dict[str, Any] = {}
        secrets_dir = Path(overrides.get("secrets_dir") or environ.get(cls.env_name("secrets_dir")) or DEFAULT_SECRETS_DIR)
        sources: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            variable = cls.env_name(name)
            if name in overrides:
                values[name] = overrides[name]
                sources[name] = f"argument {name}"
            elif is_secret(field.annotation):
                if variable in environ:
                    problems.append(
                        f"{variable}: {name} is a secret and is never read from an environment variable; "
                        f"mount it as a file at {secrets_dir / name} or point {variable}_FILE at it, "
                        f"and unset {variable}"
                    )
                    continue
                path = Path(environ[f"{variable}_FILE"]) if f"{variable}_FILE" in environ else secrets_dir / name
                sources[name] = f"secret file {path}"
                try:
                    text = path.read_text()
                except FileNotFoundError:
                    if field.is_required():
                        reported.add(name)
                        problems.append(f"{name}: secret file {path} does not exist (set {variable}_FILE or mount it there)")
                    continue
                except OSError as exc:
                    problems.append(f"{name}: secret file {path} cannot be read: {exc.strerror}")
                    continue
                values[name] = text[:-1] if text.endswith("\n") else text
            elif variable in environ:
                sources[name] = f"environment variable {variable}"
                raw = environ[variable]
                if needs_json(field.annotation):
                    try:
                        values[name] = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        problems.append(f"{variable}: not valid JSON ({exc.msg} at character {exc.pos})")
                        continue
                else:
                    values[name] = raw
        unknown = sorted(
            key for key in environ
            if key.startswith(cls.env_prefix) and not key.endswith("_FILE") and not KUBERNETES_SERVICE_LINK.search(key)
            and key[len(cls.env_prefix):].lower() not in cls.model_fields
        )
        problems += [f"{key}: no such setting for {cls.__name__} (a typo?)" for key in unknown]
        try:
            settings = cls(**values)
        except ValidationError as exc:
            for error in exc.errors():
                if not error["loc"]:  # a check across fields (a model validator): its message names them
                    problems.append(f"{cls.__name__}: {error['msg'].removeprefix('Value error, ')}")
                    continue
                name = str(error["loc"][0])
                if name in reported:
                    continue
                where = sources.get(name, f"{cls.env_name(name)} (not set)")
                secret = name in cls.model_fields and is_secret(cls.model_fields[name].annotation)
                shown = f" (got {error['input']!r})" if name in values and not secret else ""
                problems.append(f"{where}: {error['msg']}{shown}")
            raise SettingsError(problems) from None
        if problems:
            raise SettingsError(problems)
        return settings

    @classmethod
    def env_name(cls, field_name: str) -> str:
        return f"{cls.env_prefix}{field_name.upper()}"


def is_secret(annotation: Any) -> bool:
    """True for ``SecretStr`` and ``SecretStr | None``: the type, not a naming convention, makes a secret."""
    if annotation is SecretStr:
        return True
    return any(arg is SecretStr for arg in typing.get_args(annotation))


def needs_json(annotation: Any) -> bool:
    """Lists, dicts, tuples and nested models cannot be written as a bare string: they are JSON."""
    candidates = [annotation, *typing.get_args(annotation)] if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is typing.Union else [annotation]
    for candidate in candidates:
        origin = typing.get_origin(candidate) or candidate
        if origin in (list, dict, tuple, set, frozenset):
            return True
        if isinstance(origin, type) and issubclass(origin, BaseModel):
            return True
    return False
