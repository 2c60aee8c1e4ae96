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

import httpx


class AuthorizationUnavailable(Exception):
    """OpenFGA gave no decision (unreachable, timed out, error, or an answer without ``allowed``)."""


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
