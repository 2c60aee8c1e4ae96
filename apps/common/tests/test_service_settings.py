"""Settings: environment for ordinary values, files for secrets, refusal of secrets in env vars."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from soma_service import ServiceSettings, SettingsError


class DemoSettings(ServiceSettings):
    db_password: SecretStr
    api_key: SecretStr | None = None
    allowed_audiences: list[str] = []


def test_ordinary_values_come_from_the_environment_and_are_typed(tmp_path):
    (tmp_path / "db_password").write_text("s3cret\n")
    settings = DemoSettings.from_env({"SOMA_SERVICE_NAME": "demo", "SOMA_HTTP_PORT": "9000",
                                      "SOMA_SECRETS_DIR": str(tmp_path),
                                      "SOMA_ALLOWED_AUDIENCES": '["gateway", "orchestrator"]'})
    assert settings.http_port == 9000
    assert settings.allowed_audiences == ["gateway", "orchestrator"]
    assert settings.db_password.get_secret_value() == "s3cret"  # one trailing newline stripped
    assert settings.api_key is None  # optional secret, no file: absent
    assert "s3cret" not in repr(settings)


def test_a_secret_in_an_environment_variable_is_refused_by_name(tmp_path):
    (tmp_path / "db_password").write_text("from-file")
    with pytest.raises(SettingsError) as failure:
        DemoSettings.from_env({"SOMA_SERVICE_NAME": "demo", "SOMA_SECRETS_DIR": str(tmp_path),
                               "SOMA_DB_PASSWORD": "leaked-value"})
    message = str(failure.value)
    assert "SOMA_DB_PASSWORD: db_password is a secret" in message
    assert "leaked-value" not in message


def test_the_file_variable_points_at_a_mounted_secret(tmp_path):
    mounted = tmp_path / "elsewhere" / "password"
    mounted.parent.mkdir()
    mounted.write_text("mounted")
    settings = DemoSettings.from_env({"SOMA_SERVICE_NAME": "demo", "SOMA_DB_PASSWORD_FILE": str(mounted),
                                      "SOMA_SECRETS_DIR": str(tmp_path / "nothing-here")})
    assert settings.db_password.get_secret_value() == "mounted"


def test_every_problem_is_reported_at_once_naming_its_source(tmp_path):
    with pytest.raises(SettingsError) as failure:
        DemoSettings.from_env({"SOMA_HTTP_PORT": "eighty", "SOMA_SECRETS_DIR": str(tmp_path),
                               "SOMA_ALLOWED_AUDIENCES": "gateway", "SOMA_HTTP_PROT": "1"})
    problems = "\n".join(failure.value.problems)
    assert f"db_password: secret file {tmp_path / 'db_password'} does not exist" in problems
    assert "SOMA_ALLOWED_AUDIENCES: not valid JSON" in problems
    assert "SOMA_HTTP_PROT: no such setting" in problems
    assert "environment variable SOMA_HTTP_PORT: Input should be a valid integer" in problems
    assert "SOMA_SERVICE_NAME (not set): Field required" in problems
    assert len(failure.value.problems) == 5, problems  # the missing file is told once, not again as "required"


def test_a_bad_value_names_the_variable_and_shows_the_value_but_never_a_secret(tmp_path):
    (tmp_path / "db_password").write_text("")
    with pytest.raises(SettingsError) as failure:
        DemoSettings.from_env({"SOMA_SERVICE_NAME": "demo", "SOMA_HTTP_PORT": "eighty", "SOMA_LOG_LEVEL": "LOUD",
                               "SOMA_SECRETS_DIR": str(tmp_path)})
    problems = failure.value.problems
    assert any(p.startswith("environment variable SOMA_HTTP_PORT:") and "'eighty'" in p for p in problems)
    assert any(p.startswith("environment variable SOMA_LOG_LEVEL:") for p in problems)
    assert not any("SOMA_SERVICE_NAME" in p for p in problems)


def test_kubernetes_service_link_variables_are_not_mistaken_for_typos(tmp_path):
    (tmp_path / "db_password").write_text("x")
    links = {"SOMA_GATEWAY_SERVICE_HOST": "10.0.0.1", "SOMA_GATEWAY_SERVICE_PORT": "8080",
             "SOMA_GATEWAY_SERVICE_PORT_HTTP": "8080", "SOMA_GATEWAY_PORT": "tcp://10.0.0.1:8080",
             "SOMA_GATEWAY_PORT_8080_TCP": "tcp://10.0.0.1:8080", "SOMA_GATEWAY_PORT_8080_TCP_ADDR": "10.0.0.1"}
    settings = DemoSettings.from_env({"SOMA_SERVICE_NAME": "demo", "SOMA_SECRETS_DIR": str(tmp_path), **links})
    assert settings.http_port == 8080  # SOMA_..._PORT is a link, not the HTTP_PORT setting
    with pytest.raises(SettingsError, match="SOMA_HTTP_PORTT: no such setting"):
        DemoSettings.from_env({"SOMA_SERVICE_NAME": "demo", "SOMA_SECRETS_DIR": str(tmp_path), "SOMA_HTTP_PORTT": "1"})
