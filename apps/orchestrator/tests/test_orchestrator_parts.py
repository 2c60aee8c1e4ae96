"""The parts other code builds on, without a database: the scripted model (the crews' tests use it too),
the model provider from settings, the settings themselves, and the steps' timeout defaults."""
from __future__ import annotations

import asyncio

import certifi
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import SecretStr

from orchestrator_fixtures import MODEL_ID, STORE_ID
from soma_orchestrator.models import OpenAICompatibleProvider
from soma_orchestrator.scripted import ScriptedModel, ScriptedModels, ScriptExhausted
from soma_orchestrator.settings import OrchestratorSettings
from soma_service import SettingsError


def test_the_scripted_model_answers_in_turn_records_prompts_and_refuses_an_unscripted_call():
    models = ScriptedModels({"analyst": ["plain", lambda prompt: f"saw {len(prompt)} messages",
                                         AIMessage("", tool_calls=[{"name": "web-search", "args": {"q": "x"}, "id": "c1"}])]})
    analyst = models.model_for("analyst")
    assert analyst.invoke("first").content == "plain"
    assert asyncio.run(analyst.ainvoke([HumanMessage("a"), HumanMessage("b")])).content == "saw 2 messages"
    assert analyst.bind_tools([]).invoke("third").tool_calls[0]["name"] == "web-search"
    assert [m[-1].content for m in models.seen["analyst"]] == ["first", "b", "third"] and analyst.turn == 3
    with pytest.raises(ScriptExhausted, match="agent 'analyst' has 3 replies; call 4 has none"):
        analyst.invoke("fourth")
    with pytest.raises(ScriptExhausted, match="no script for agent 'writer'"):
        models.model_for("writer")
    assert ScriptedModel(["x"]).invoke("y").id == "scripted-model-0"    # stable ids: same script, same messages


def test_the_provider_speaks_to_the_configured_endpoint_with_the_key_from_its_file():
    provider = OpenAICompatibleProvider("http://llm.soma-agents:8000/v1", SecretStr("sk-file"), "granite-8b",
                                        aliases={"fast": "granite-2b"})
    model = provider.model_for("writer", "fast")
    assert (model.model_name, model.openai_api_base, model.openai_api_key.get_secret_value()) == \
        ("granite-2b", "http://llm.soma-agents:8000/v1", "sk-file")
    assert model.temperature == 0 and provider.model_for("writer").model_name == "granite-8b"
    with pytest.raises(ValueError, match="model 'gpt-9' is not offered"):
        provider.model_for("writer", "gpt-9")


def test_settings_read_secrets_from_files_only_and_report_every_problem(tmp_path):
    for name, value in {"database_dsn": "postgresql://orch:pw@db/orchestrator", "model_api_key": "sk",
                        "openfga_store_id": STORE_ID, "openfga_model_id": MODEL_ID, "audit_kafka_password": "scram"}.items():
        (tmp_path / name).write_text(value + "\n")
    env = {"SOMA_SECRETS_DIR": str(tmp_path), "SOMA_OPENFGA_API_URL": "http://openfga:8080", "SOMA_MODEL_BASE_URL": "http://llm/v1",
           "SOMA_MODEL_NAME": "granite-8b", "SOMA_AUDIT_KAFKA_BOOTSTRAP": "kafka:9093", "SOMA_AVAILABLE_TOOLS": '["web-search"]',
           "SOMA_AUDIT_KAFKA_USERNAME": "audit-producer", "SOMA_AUDIT_KAFKA_CA_FILE": certifi.where()}
    settings = OrchestratorSettings.from_env(env)
    assert settings.database_dsn.get_secret_value() == "postgresql://orch:pw@db/orchestrator"
    assert settings.available_tools == ("web-search",) and settings.step_max_attempts == 3
    with pytest.raises(SettingsError) as error:
        OrchestratorSettings.from_env({**env, "SOMA_MODEL_API_KEY": "sk-in-env", "SOMA_STEP_MAX_ATTEMPTS": "0",
                                       "SOMA_AUDIT_KAFKA_BOOTSTRAP": ""})
    text = "\n".join(error.value.problems)
    assert "SOMA_MODEL_API_KEY: model_api_key is a secret" in text and "sk-in-env" not in text
    assert "SOMA_STEP_MAX_ATTEMPTS" in text and "audit_sink is kafka" in text


def test_the_entry_point_refuses_to_start_without_its_settings_and_names_them(tmp_path, monkeypatch, capsys):
    from soma_orchestrator.__main__ import main

    monkeypatch.setenv("SOMA_SECRETS_DIR", str(tmp_path))
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "database_dsn: secret file" in err and "SOMA_OPENFGA_API_URL (not set)" in err and "model_api_key" in err


def test_the_crews_compiler_plugs_in_as_kind_crew_when_its_module_is_present(monkeypatch):
    import sys
    import types

    from soma_orchestrator.registry import default_compilers

    crews = types.ModuleType("soma_orchestrator.crews")
    crews.compile_crew = lambda text, source, available_tools: ("compiled", source)
    monkeypatch.setitem(sys.modules, "soma_orchestrator.crews", crews)
    assert default_compilers()["crew"]("agents: {}", "triage.crew.yaml", frozenset()) == ("compiled", "triage.crew.yaml")
