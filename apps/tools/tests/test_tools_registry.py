"""The registry's rules (versions, declarations, schemas), the settings' errors, and the sandbox run directly:
what the socket guard stops and what it does not without a network namespace."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

import toolservice_fixtures as fixtures
from soma_service import SettingsError
from soma_tools.registry import InvalidTool, Registry, SchemaViolation, ToolNotFound, ToolSpec, tool, version_key
from soma_tools.sandbox import SubprocessExecutor, ToolFailed
from soma_tools.settings import ToolsSettings
from soma_gateway.standins import EchoUpstream


def test_a_call_without_a_version_gets_the_newest_by_semver_not_by_text():
    registry = Registry([fixtures.echo_v1])
    for version in ("1.10.0", "1.9.0", "1.10.0-rc.1"):
        registry.add(ToolSpec(**{**fixtures.echo_v1.__dict__, "version": version}))
    assert registry.resolve("echo").version == "1.10.0"
    assert registry.versions("echo") == ["1.0.0", "1.9.0", "1.10.0-rc.1", "1.10.0"]
    assert version_key("1.0.0-alpha") < version_key("1.0.0-alpha.1") < version_key("1.0.0-beta") < version_key("1.0.0")


def test_a_registered_version_never_changes():
    registry = Registry([fixtures.echo_v1])
    with pytest.raises(InvalidTool, match=r"tool echo@1.0.0 is already registered; a version never changes"):
        registry.add(fixtures.echo_v1_1.__class__(**{**fixtures.echo_v1_1.__dict__, "version": "1.0.0"}))
    assert registry.resolve("echo", "1.0.0") is fixtures.echo_v1
    registry.add(fixtures.echo_v1_1)
    assert registry.resolve("echo", "1.0.0") is fixtures.echo_v1          # a new version leaves the old one alone
    with pytest.raises(ToolNotFound, match=r"tool 'echo' has no version '3.0.0' \(it has 1.0.0, 1.1.0\)"):
        registry.resolve("echo", "3.0.0")


def test_a_bad_declaration_names_every_problem():
    with pytest.raises(InvalidTool) as caught:
        ToolSpec(name="web search", version="1.0", description="", input_schema={"type": "object"}, output_schema=[],
                 timeout_seconds=0, network=["http://example.com"], memory_bytes=1024, entrypoint="m:f")
    message = str(caught.value)
    for part in ("name 'web search' must match", "version '1.0' is not semantic", "output_schema must be a JSON schema object",
                 "timeout_seconds 0 must be in (0, 600]", "memory_bytes 1024 is below 32 MiB",
                 "network host 'http://example.com' is not host or host:port"):
        assert part in message
    with pytest.raises(InvalidTool, match="input_schema is not a valid JSON schema: 'strnig' is not valid"):
        Registry([ToolSpec(name="x", version="1.0.0", description="", input_schema={"type": "strnig"},
                           output_schema={}, entrypoint="m:f")])


def test_a_tool_must_be_importable_by_the_sandbox():
    def make():
        @tool(name="inner", version="1.0.0", description="", input_schema={}, output_schema={})
        def inner():
            return {}
    with pytest.raises(InvalidTool, match="is not at module level"):
        make()


def test_schema_problems_carry_json_paths():
    spec = ToolSpec(name="nested", version="1.0.0", description="", entrypoint="m:f", output_schema={},
                    input_schema={"type": "object", "properties": {"rows": {"type": "array", "items": {
                        "type": "object", "properties": {"n": {"type": "integer"}}}}}})
    with pytest.raises(SchemaViolation) as caught:
        spec.check_input({"rows": [{"n": 1}, {"n": "two"}]})
    assert caught.value.problems == ["$.rows[1].n: 'two' is not of type 'integer'"]


def test_settings_errors_name_each_variable(tmp_path):
    with pytest.raises(SettingsError) as caught:
        ToolsSettings.from_env({"SOMA_SECRETS_DIR": str(tmp_path), "SOMA_OPENFGA_API_URL": "openfga:8080",
                                "SOMA_TOOL_MODULES": json.dumps(["not a module"]),
                                "SOMA_MCP_SOURCES": json.dumps([{"prefix": "a", "url": "http://x/mcp"},
                                                                {"prefix": "a", "url": "http://y/mcp"}])})
    text = "\n".join(caught.value.problems)
    for name in ("SOMA_OPENFGA_API_URL", "openfga_store_id", "SOMA_TOOL_MODULES", "SOMA_MCP_SOURCES", "SOMA_AUDIT_KAFKA_BOOTSTRAP"):
        assert name in text


def test_without_a_namespace_the_guard_stops_python_sockets_but_not_raw_ones():
    """The documented limit of the guard alone (what a pod without CAP_SYS_ADMIN gets): honest, tested."""
    local = EchoUpstream().start()

    async def run():
        executor = SubprocessExecutor(network_namespace=False, warm=False)
        address = {"host": "127.0.0.1", "port": local.port}
        with pytest.raises(ToolFailed, match="NetworkDenied: network access to '127.0.0.1' is not declared") as caught:
            await executor.run(fixtures.offline_fetch, address)
        assert caught.value.isolation == "guard"
        return await executor.run(fixtures.raw_connect, address)

    try:
        outcome = asyncio.run(run())
    finally:
        local.stop()
    assert outcome.isolation == "guard" and outcome.output == {"connected": True}


def test_concurrent_calls_run_side_by_side_each_with_its_own_answer():
    async def run():
        executor = SubprocessExecutor()
        await executor.start()
        try:
            return await asyncio.gather(*(executor.run(fixtures.echo_v1, {"text": str(i)}) for i in range(3)))
        finally:
            await executor.stop()

    assert [outcome.output for outcome in asyncio.run(run())] == [{"text": "0"}, {"text": "1"}, {"text": "2"}]


def test_past_the_concurrency_limit_a_call_waits_for_a_slot(tmp_path):
    async def run():
        executor = SubprocessExecutor(max_concurrent=1, warm=False)
        started = time.monotonic()
        slow, echoed = await asyncio.gather(executor.run(fixtures.slow, {"pidfile": str(tmp_path / "pid")}),
                                            executor.run(fixtures.echo_v1, {"text": "after"}), return_exceptions=True)
        return slow, echoed, time.monotonic() - started

    slow, echoed, seconds = asyncio.run(run())
    assert isinstance(slow, ToolFailed) and slow.kind == "timeout"
    assert echoed.output == {"text": "after"} and seconds >= 1     # it ran once the slow call's process was gone
