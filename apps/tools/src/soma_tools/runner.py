"""The sandbox's child: ``python -m soma_tools.runner`` runs exactly one tool call, then exits.

It starts before it knows the call (the executor keeps one warm), waits for one JSON request on stdin, then,
in this order: limits (RLIMIT_AS = the tool's memory, RLIMIT_CPU = its timeout rounded up plus one second,
no core files), network isolation (soma_tools.isolation), the import of the tool's module, the call. The
answer is one JSON object on the file descriptor that was stdout when the process started; the tool's own
prints go to stderr, so nothing a tool prints can forge an answer. While warm it imports the registry (which
tool modules use to declare themselves) so that the call pays only for the tool's own imports.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import resource
import sys


def _limit(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _load(entrypoint: str):
    module_name, _, qualname = entrypoint.partition(":")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return getattr(target, "function", None) or target   # a ToolSpec made by @tool, or the function itself


def run(request: dict) -> dict:
    from soma_tools.isolation import isolate

    _limit(int(request["memory_bytes"]), int(request["cpu_seconds"]))
    isolation = isolate(request.get("network"), namespace=bool(request.get("namespace", True)))
    try:
        function = _load(request["entrypoint"])
    except MemoryError:
        return {"ok": False, "isolation": isolation, "error": {"kind": "memory_limit", "message": "the tool's module did not load within its memory limit"}}
    except Exception as exc:  # noqa: BLE001 - reported to the caller as the tool's failure
        return {"ok": False, "isolation": isolation, "error": {"kind": "load_error", "message": f"{type(exc).__name__}: {exc}"}}
    try:
        output = function(**request["input"])
        if inspect.isawaitable(output):
            import asyncio

            output = asyncio.run(_await(output))
        text = json.dumps(output)
    except MemoryError:
        return {"ok": False, "isolation": isolation, "error": {"kind": "memory_limit", "message": "the tool exceeded its memory limit"}}
    except (TypeError, ValueError) as exc:
        return {"ok": False, "isolation": isolation, "error": {"kind": "tool_error", "message": f"{type(exc).__name__}: {exc}"}}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "isolation": isolation, "error": {"kind": "tool_error", "message": f"{type(exc).__name__}: {exc}"}}
    return {"ok": True, "isolation": isolation, "output_json": text}


async def _await(awaitable):
    return await awaitable


def main() -> int:
    import soma_tools.isolation  # noqa: F401 - while warm
    import soma_tools.registry  # noqa: F401 - while warm: tool modules import it to declare themselves

    answer_fd = os.dup(1)
    os.dup2(2, 1)                      # the tool's prints go to stderr
    sys.stdout = sys.stderr
    line = sys.stdin.buffer.readline()
    if not line:
        return 0                       # the warm child was not needed
    answer = run(json.loads(line))
    with os.fdopen(answer_fd, "wb") as out:
        out.write(json.dumps(answer).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
