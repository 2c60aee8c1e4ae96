"""OpenFGA's Check over its HTTP API, failing closed.

The shapes are OpenFGA's documented ones (openfga/api, docs/openapiv2/apidocs.swagger.json, path
``/stores/{store_id}/check``; https://openfga.dev/docs/api/service/relationship-queries/check-user-authorization):
request ``{"tuple_key": {"user", "relation", "object"}, "authorization_model_id"}``, answer
``{"allowed": bool, "resolution": str}``; errors ``{"code", "message"}`` with 400/404/409/422/500.

The model ID is always sent: the gateway then asks exactly the model the Governance bootstrap published
(store and model IDs come from Vault as mounted files) and never whatever model happens to be latest.
Anything but a 200 with a boolean ``allowed`` is ``AuthorizationUnavailable``: no answer is never "yes".
"""
from __future__ import annotations

import re

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")   # OpenFGA's store and model IDs are ULIDs


class AuthorizationUnavailable(Exception):
    """OpenFGA gave no decision (unreachable, timed out, error, or an answer without ``allowed``)."""


class OpenFgaSettings(BaseModel):
    """The settings of a service that asks OpenFGA: mix in before :class:`~soma_service.ServiceSettings`
    (``class XSettings(OpenFgaSettings, ServiceSettings)``).

    The store and model IDs are typed as secrets so that they are read only from the files Vault and External
    Secrets mount (Governance publishes them at ``outputs.openfga.ids_path``, keys ``store-id`` and
    ``model-id``): ``SOMA_OPENFGA_STORE_ID_FILE`` / ``SOMA_OPENFGA_MODEL_ID_FILE``, or
    ``<SOMA_SECRETS_DIR>/openfga_store_id`` and ``openfga_model_id``. They are not confidential, but an ID typed
    into an environment variable by hand would outlive the model it names; the file follows Vault.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    openfga_api_url: str = Field(pattern=r"^https?://", description="OpenFGA's HTTP API, e.g. http://openfga.soma-governance:8080")
    openfga_store_id: SecretStr
    openfga_model_id: SecretStr
    openfga_timeout_seconds: float = Field(default=1.0, gt=0)

    @field_validator("openfga_store_id", "openfga_model_id")
    @classmethod
    def _ulid(cls, value: SecretStr) -> SecretStr:
        if not _ULID.match(value.get_secret_value().strip()):
            raise ValueError("not an OpenFGA ID (a 26-character ULID)")
        return SecretStr(value.get_secret_value().strip())

    def openfga_client(self, client: httpx.AsyncClient) -> "OpenFgaClient":
        """The client these settings name, sending its checks through ``client``."""
        return OpenFgaClient(self.openfga_api_url, self.openfga_store_id.get_secret_value(),
                             self.openfga_model_id.get_secret_value(), client, timeout=self.openfga_timeout_seconds)


class OpenFgaClient:
    def __init__(self, api_url: str, store_id: str, model_id: str, client: httpx.AsyncClient, *, timeout: float = 1.0):
        self.check_url = f"{api_url.rstrip('/')}/stores/{store_id}/check"
        self.model_id = model_id
        self.client = client
        self.timeout = timeout

    async def check(self, user: str, relation: str, obj: str) -> bool:
        body = {"tuple_key": {"user": user, "relation": relation, "object": obj}, "authorization_model_id": self.model_id}
        try:
            answer = await self.client.post(self.check_url, json=body, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise AuthorizationUnavailable(f"OpenFGA unreachable: {type(exc).__name__}") from None
        if answer.status_code != 200:
            raise AuthorizationUnavailable(f"OpenFGA answered {answer.status_code}: {_error(answer)}")
        try:
            allowed = answer.json().get("allowed")
        except (ValueError, AttributeError):
            allowed = None
        if not isinstance(allowed, bool):
            raise AuthorizationUnavailable("OpenFGA's answer carries no boolean 'allowed'")
        return allowed


def _error(answer: httpx.Response) -> str:
    try:
        body = answer.json()
        return f"{body.get('code')}: {body.get('message')}"
    except (ValueError, AttributeError):
        return answer.text[:200]
