"""Tools the tool service's tests register: module level, so the sandbox's child can import them."""
from __future__ import annotations

import os
import socket
import time

from soma_tools.registry import tool

TEXT_IN = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 1000}},
           "required": ["text"], "additionalProperties": False}
TEXT_OUT = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"], "additionalProperties": False}
ADDRESS_IN = {"type": "object", "properties": {"host": {"type": "string"}, "port": {"type": "integer"}},
              "required": ["host", "port"], "additionalProperties": False}
FETCH_OUT = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}


@tool(name="echo", version="1.0.0", description="Returns the text it was given.", input_schema=TEXT_IN,
      output_schema=TEXT_OUT, timeout_seconds=5)
def echo_v1(text: str) -> dict:
    print("tools may print; it never reaches the answer")
    return {"text": text}


@tool(name="echo", version="1.1.0", description="Returns the text it was given, upper-cased.", input_schema=TEXT_IN,
      output_schema=TEXT_OUT, timeout_seconds=5)
def echo_v1_1(text: str) -> dict:
    return {"text": text.upper()}


@tool(name="slow", version="1.0.0", description="Writes its process id, then sleeps far longer than its timeout.",
      input_schema={"type": "object", "properties": {"pidfile": {"type": "string"}}, "required": ["pidfile"]},
      output_schema={"type": "object"}, timeout_seconds=1)
def slow(pidfile: str) -> dict:
    with open(pidfile, "w") as out:
        out.write(str(os.getpid()))
    time.sleep(30)
    return {}


@tool(name="shell", version="1.0.0", description="A tool no test caller is granted.", input_schema={"type": "object"},
      output_schema={"type": "object"}, timeout_seconds=5)
def shell() -> dict:
    return {"ran": True}


@tool(name="liar", version="1.0.0", description="Answers outside its output schema.", input_schema={"type": "object"},
      output_schema=TEXT_OUT, timeout_seconds=5)
def liar() -> dict:
    return {"text": 42}


@tool(name="hog", version="1.0.0", description="Allocates more than its memory limit.", input_schema={"type": "object"},
      output_schema={"type": "object"}, timeout_seconds=5, memory_bytes=64 * 1024 * 1024)
def hog() -> dict:
    block = bytearray(512 * 1024 * 1024)
    return {"size": len(block)}


def _fetch(host: str, port: int) -> dict:
    with socket.create_connection((host, port), timeout=2) as connection:
        connection.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        return {"status": connection.recv(64).decode().split("\r\n")[0]}


@tool(name="offline-fetch", version="1.0.0", description="Tries to fetch without declaring any network.",
      input_schema=ADDRESS_IN, output_schema=FETCH_OUT, timeout_seconds=5)
def offline_fetch(host: str, port: int) -> dict:
    return _fetch(host, port)


@tool(name="raw-connect", version="1.0.0", description="Connects with the C-level socket, around the Python guard.",
      input_schema=ADDRESS_IN, output_schema={"type": "object"}, timeout_seconds=5)
def raw_connect(host: str, port: int) -> dict:
    import _socket
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    sock.settimeout(2)
    try:
        sock.connect((host, port))
        return {"connected": True}
    except OSError as exc:
        return {"connected": False, "error": type(exc).__name__, "errno": exc.errno}
    finally:
        sock.close()


@tool(name="local-fetch", version="1.0.0", description="Fetches from 127.0.0.1, which it declares.",
      input_schema=ADDRESS_IN, output_schema=FETCH_OUT, timeout_seconds=5, network=["127.0.0.1"])
def local_fetch(host: str, port: int) -> dict:
    return _fetch(host, port)


ALL = [echo_v1, echo_v1_1, slow, shell, liar, hog, offline_fetch, raw_connect, local_fetch]
