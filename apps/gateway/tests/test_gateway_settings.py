"""Bad gateway configuration stops the start with every problem named; the OpenFGA IDs come only from files."""
from __future__ import annotations

import json

import certifi
import pytest

from gateway_fixtures import MODEL_ID, STORE_ID
from soma_gateway.openapi import document
from soma_gateway.routes import DEFAULT_ROUTES
from soma_gateway.settings import GatewaySettings
from soma_service import SettingsError

UPSTREAMS = {"orchestrator": "http://orchestrator:8080", "tools": "http://tools:8080", "memory": "http://memory:8080"}


def environ(tmp_path, **changes) -> dict:
    (tmp_path / "openfga_store_id").write_text(STORE_ID + "\n")
    (tmp_path / "openfga_model_id").write_text(MODEL_ID + "\n")
    (tmp_path / "audit_kafka_password").write_text("scram-password\n")
    env = {"SOMA_JWT_ISSUER": "https://identity.dev.soma.local", "SOMA_JWT_AUDIENCE": "soma-api",
           "SOMA_JWKS_URL": "http://identity:8080/.well-known/jwks.json", "SOMA_OPENFGA_API_URL": "http://openfga:8080",
           "SOMA_REDIS_URL": "redis://redis:6379/0", "SOMA_UPSTREAMS": json.dumps(UPSTREAMS),
           "SOMA_AUDIT_KAFKA_BOOTSTRAP": "platform-kafka-bootstrap.soma-data.svc:9093", "SOMA_AUDIT_KAFKA_USERNAME": "audit-producer",
           "SOMA_AUDIT_KAFKA_CA_FILE": certifi.where(), "SOMA_SECRETS_DIR": str(tmp_path)}  # any PEM CA file will do here
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def problems(tmp_path, **changes) -> str:
    with pytest.raises(SettingsError) as caught:
        GatewaySettings.from_env(environ(tmp_path, **changes))
    return "\n".join(caught.value.problems)


def test_valid_settings_read_the_ids_from_the_mounted_files(tmp_path):
    settings = GatewaySettings.from_env(environ(tmp_path))
    assert settings.openfga_store_id.get_secret_value() == STORE_ID and settings.audit_sink == "kafka"
    assert settings.rate_limit.rate == 50 and settings.service_name == "gateway"


def test_an_openfga_id_in_an_environment_variable_is_refused_by_name(tmp_path):
    assert "SOMA_OPENFGA_STORE_ID: openfga_store_id is a secret" in problems(tmp_path, SOMA_OPENFGA_STORE_ID=STORE_ID)


def test_every_problem_is_named_at_once(tmp_path):
    (tmp_path / "bad-model").write_text("latest")
    found = problems(tmp_path, SOMA_UPSTREAMS=json.dumps({"orchestrator": "http://o"}), SOMA_AUDIT_KAFKA_BOOTSTRAP=None,
                     SOMA_REDIS_URL="redis://:hunter2@redis:6379/0", SOMA_OPENFGA_MODEL_ID_FILE=str(tmp_path / "bad-model"),
                     SOMA_RATE_LIMIT=json.dumps({"rate": 0, "burst": 1}))
    assert "SOMA_UPSTREAMS" in found and "['memory', 'tools']" in found
    assert "SOMA_AUDIT_KAFKA_BOOTSTRAP" in found and "audit_sink is kafka" in found
    assert "SOMA_REDIS_URL" in found and "carries a password" in found and "hunter2" not in found
    assert "bad-model" in found and "not an OpenFGA ID" in found
    assert "SOMA_RATE_LIMIT" in found


def test_the_generated_openapi_lists_every_route_with_its_denials():
    spec = document()
    for route in DEFAULT_ROUTES.routes:
        operation = spec["paths"][route.path][route.method.lower()]
        assert {"401", "403", "429", "503"} <= set(operation["responses"]) and route.relation in operation["summary"]
