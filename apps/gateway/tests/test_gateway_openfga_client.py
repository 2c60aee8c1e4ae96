"""The OpenFGA client against a local server that speaks OpenFGA's documented Check API (request validated
against the OpenAPI schema, errors in the documented {code, message} shape). No OpenFGA server runs here:
this shows the client's request and its reading of answers, not OpenFGA's evaluation (that is
test_gateway_fga_model.py, with the engine itself)."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway_fixtures import MODEL_ID, STORE_ID
from soma_service.openfga import AuthorizationUnavailable, OpenFgaClient


def check(url: str, user: str, relation: str, obj: str, *, store: str = STORE_ID, model: str = MODEL_ID) -> bool:
    async def run():
        async with httpx.AsyncClient() as client:
            return await OpenFgaClient(url, store, model, client, timeout=1.0).check(user, relation, obj)
    return asyncio.run(run())


def test_allowed_and_denied_answers_are_read(fga):
    assert check(fga.url, "user:bob", "can_run", "workflow:acme-triage") is True
    assert check(fga.url, "user:gina", "can_run", "workflow:acme-triage") is False
    assert fga.asked[-2:] == [("user:bob", "can_run", "workflow:acme-triage"), ("user:gina", "can_run", "workflow:acme-triage")]


def test_the_model_id_is_always_sent_and_a_wrong_one_is_an_error_not_a_decision(fga):
    with pytest.raises(AuthorizationUnavailable, match="400: authorization_model_not_found"):
        check(fga.url, "user:bob", "can_run", "workflow:acme-triage", model="01JH6QA0000000000000000000")


def test_an_unknown_store_is_an_error_not_a_decision(fga):
    with pytest.raises(AuthorizationUnavailable, match="404: store_id_not_found"):
        check(fga.url, "user:bob", "can_run", "workflow:acme-triage", store="01JH6QB0000000000000000000")


def test_a_server_error_is_no_decision(fga):
    fga.fail_with = 500
    try:
        with pytest.raises(AuthorizationUnavailable, match="500: internal_error"):
            check(fga.url, "user:bob", "can_run", "workflow:acme-triage")
    finally:
        fga.fail_with = None


def test_an_unreachable_server_is_no_decision(fga):
    fga.stop()
    try:
        with pytest.raises(AuthorizationUnavailable, match="unreachable"):
            check(fga.url, "user:bob", "can_run", "workflow:acme-triage")
    finally:
        fga.start()
    assert check(fga.url, "user:bob", "can_run", "workflow:acme-triage") is True
