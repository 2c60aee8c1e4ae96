"""The servers the tool service's tests run on 127.0.0.1: the tool service itself (uvicorn in a thread), an
external MCP server (the `mcp` package's FastMCP) as a tool source, and the OpenFGA stand-in."""
from __future__ import annotations

import threading
import time

import uvicorn

from soma_gateway.standins import free_port

STORE_ID = "01JD0000000000000000000001"
MODEL_ID = "01JD0000000000000000000002"
HELPER = "agent:helper"
HEADERS = {"X-Soma-Tenant": "acme", "X-Soma-Principal": HELPER}


class ThreadedServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread, lifespan included."""

    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def external_mcp_app():
    """An MCP server somebody else runs: two arithmetic tools over streamable HTTP at /mcp."""
    from mcp.server.fastmcp import FastMCP

    server = FastMCP("arith", stateless_http=True, json_response=True)

    @server.tool(description="Adds two integers.")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Sleeps, longer than the source's timeout.")
    async def nap(seconds: float) -> str:
        import anyio

        await anyio.sleep(seconds)
        return "rested"

    return server.streamable_http_app()


class Events:
    """An audit sink that keeps what it is given."""

    def __init__(self):
        self.events: list[dict] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def emit(self, event: dict) -> None:
        self.events.append(event)

    def for_request(self, request_id: str) -> list[dict]:
        return [e for e in self.events if e["attributes"].get("request.id") == request_id]
