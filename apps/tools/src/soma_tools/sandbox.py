"""Runs a sandboxed tool call in its own process: wall-clock timeout (the process group is killed), memory
and CPU limits, no network unless declared (see soma_tools.isolation for what that does and does not stop).

One process per call, never reused: limits and the network namespace are set once and for good in the child,
and no state survives from one call (or one caller) to the next. Start-up cost is hidden by keeping one
*warm* child: a process that has started Python and waits for its request on stdin. A call takes the warm
child and a new one starts in the background. The child gets a minimal environment (no service settings),
its own session (so a killed call takes its subprocesses with it) and ``/tmp`` as working directory.

What the sandbox does not do: the child runs as the service's user and can read what the service can read
(the service's secrets are files under ``SOMA_SECRETS_DIR``; tools are first-party code, reviewed like the
service). Stronger isolation (gVisor, a separate pod per call) is the cluster's to add.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import dataclass

from .registry import ToolSpec

LOG = logging.getLogger("soma_tools.sandbox")
MAX_ANSWER_BYTES = 8 * 1024 * 1024


class ToolFailed(Exception):
    """The call did not produce an output; ``kind`` is stable (timeout, memory_limit, tool_error, crashed, ...)."""

    def __init__(self, kind: str, message: str, isolation: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.isolation = isolation


@dataclass(frozen=True)
class Outcome:
    output: object
    isolation: str
    seconds: float


class SubprocessExecutor:
    def __init__(self, *, python: str = sys.executable, network_namespace: bool = True, warm: bool = True,
                 max_concurrent: int = 8):
        self.python = python
        self.network_namespace = network_namespace
        self.warm = warm
        self.max_concurrent = max_concurrent
        self._slots = asyncio.Semaphore(max_concurrent)
        self._spare: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task | None = None

    def _environment(self) -> dict[str, str]:
        path = os.pathsep.join(os.path.abspath(p or os.getcwd()) for p in sys.path)
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": path, "HOME": "/tmp",
                "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}

    async def _start(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            self.python, "-m", "soma_tools.runner", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._environment(), cwd="/tmp", start_new_session=True)

    async def start(self) -> None:
        if self.warm and self._spare is None and self._starting is None:
            self._starting = asyncio.create_task(self._start())

    async def _take(self) -> asyncio.subprocess.Process:
        process = None
        if self._starting is not None:
            starting, self._starting = self._starting, None
            try:
                process = await starting
            except OSError as exc:
                LOG.error("warm tool process did not start: %s", exc)
        if process is None or process.returncode is not None:
            process = await self._start()
        if self.warm:
            self._starting = asyncio.create_task(self._start())
        return process

    async def stop(self) -> None:
        if self._starting is not None:
            starting, self._starting = self._starting, None
            try:
                process = await starting
                process.stdin.close()
                await process.wait()
            except OSError:
                pass

    async def run(self, spec: ToolSpec, arguments: dict) -> Outcome:
        """At most ``max_concurrent`` tool processes at once (each may use up to its ``memory_bytes``); a call
        waits for a slot at most its own timeout, then fails ``sandbox_busy``."""
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=spec.timeout_seconds)
        except asyncio.TimeoutError:
            raise ToolFailed("sandbox_busy", f"all {self.max_concurrent} tool processes stayed busy for "
                             f"{spec.timeout_seconds:g} s (tool {spec.ref} did not start)") from None
        try:
            return await self._run(spec, arguments)
        except OSError as exc:
            raise ToolFailed("crashed", f"tool {spec.ref}: its process could not be started ({exc})") from None
        finally:
            self._slots.release()

    async def _run(self, spec: ToolSpec, arguments: dict) -> Outcome:
        request = {"entrypoint": spec.entrypoint, "input": arguments, "memory_bytes": spec.memory_bytes,
                   "cpu_seconds": math.ceil(spec.timeout_seconds) + 1,
                   "network": list(spec.network) if spec.network is not None else None,
                   "namespace": self.network_namespace}
        started = time.monotonic()
        process = await self._take()
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate((json.dumps(request) + "\n").encode()),
                                                    timeout=spec.timeout_seconds)
        except asyncio.TimeoutError:
            _kill(process)
            await process.wait()
            raise ToolFailed("timeout", f"tool {spec.ref} did not finish within {spec.timeout_seconds:g} s and was stopped") from None
        except (BrokenPipeError, ConnectionResetError):
            await process.wait()
            raise ToolFailed("crashed", f"tool {spec.ref}: its process ended before taking the call "
                             f"({_signal_name(process.returncode)})") from None
        except asyncio.CancelledError:
            _kill(process)
            raise
        finally:
            _kill(process)   # whatever the tool started in its session goes too
        seconds = time.monotonic() - started
        if len(stdout) > MAX_ANSWER_BYTES:
            raise ToolFailed("output_too_large", f"tool {spec.ref} answered more than {MAX_ANSWER_BYTES} bytes")
        try:
            answer = json.loads(stdout)
        except ValueError:
            reason = _signal_name(process.returncode)
            LOG.warning("tool %s ended without an answer (%s): %s", spec.ref, reason, stderr[-500:].decode(errors="replace"))
            raise ToolFailed("crashed", f"tool {spec.ref} ended without an answer ({reason})") from None
        if not answer.get("ok"):
            error = answer.get("error") or {}
            raise ToolFailed(error.get("kind", "tool_error"), error.get("message", "the tool failed"), answer.get("isolation"))
        return Outcome(json.loads(answer["output_json"]), answer["isolation"], seconds)


def _kill(process: asyncio.subprocess.Process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        name = signal.Signals(-returncode).name
        return f"killed by {name}" + (" (CPU time limit)" if name == "SIGXCPU" else "")
    return f"exit status {returncode}"
