"""Run the real program under Pulumi's mock runtime and record what it registers.

The mock monitor sees every RegisterResource call, with its parent and dependencies (which
``Mocks.new_resource`` does not), so recording happens here. It also refuses what the real
engine would refuse but the mocks let through: two resources with the same URN.
"""
from __future__ import annotations

import asyncio

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import pulumi
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

RANDOM_RESULT_TYPES = {
    "random:index/randomPassword:RandomPassword": "result",
    "random:index/randomString:RandomString": "result",
    "random:index/randomBytes:RandomBytes": "base64",
}


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def make_urn(parent_urn: str, type_: str, name: str) -> str:
    """A child's URN as the engine builds it: stack and project from the parent, the whole chain of
    parent types (not only the last, as the mocks do), and never the root stack's type."""
    stack, project, chain = parent_urn.removeprefix("urn:pulumi:").split("::")[:3]
    if chain != ROOT_STACK_TYPE:
        type_ = f"{chain}${type_}"
    return "urn:pulumi:" + "::".join([stack, project, type_, name])


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str | None
    dependencies: list[str]
    custom: bool
    remote: bool
    inputs: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    """Resource options the engine receives beside the inputs (e.g. retainOnDelete)."""


class DuplicateUrnError(RuntimeError):
    """The engine would refuse the program: two resources share a URN."""


class PlanMocks(pulumi.runtime.Mocks):
    """Resources echo their inputs; generated credentials get a recognisable, fake value.

    The engine, not the SDK, marks a random password's ``result`` secret (additionalSecretOutputs);
    the mock monitor does not, so the value is returned already wrapped as a secret here.

    Tests search the plan for these generated values to prove no credential leaks into any
    input; ``generated`` keeps them for that.
    """

    def __init__(self) -> None:
        self.generated: dict[str, str] = {}
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        output = RANDOM_RESULT_TYPES.get(args.typ)
        if output:
            value = "gen-" + hashlib.sha256(f"{args.typ}/{args.name}".encode()).hexdigest()[:24]
            state[output] = {rpc._special_sig_key: rpc._special_secret_sig, "value": value}
            with self._lock:
                self.generated[args.name] = value
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}


class RecordingMonitor(MockMonitor):
    """Records each registration with its inputs as sent on the wire.

    Inputs are read straight from the protobuf, not through the SDK's deserializer, which
    lifts a nested secret up to the whole top-level property; here a secret stays where it is,
    so the plan masks only the secret value itself.
    """

    def __init__(self, mocks: PlanMocks) -> None:
        super().__init__(mocks)
        self.registrations: list[Registration] = []
        self.duplicates: list[str] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        if parent:
            return make_urn(parent, type_, name)
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type == "pulumi:pulumi:Stack":
            return response
        urn = self.make_urn(request.parent, request.type, request.name)
        record = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            dependencies=sorted(set(request.dependencies)),
            custom=bool(request.custom),
            remote=bool(request.remote),
            inputs=json_format.MessageToDict(request.object),
            options=resource_options(request),
        )
        with self._lock:
            if any(r.urn == urn for r in self.registrations):
                self.duplicates.append(urn)
            self.registrations.append(record)
        return response


def resource_options(request) -> dict[str, Any]:
    """The options the engine acts on at delete time, as the request carries them (the SDK has already
    applied inheritance: ``protect`` comes from the parent unless set), and the explicit provider a resource is
    registered with (its URN), which decides where the resource goes: a cluster, Vault, or files."""
    options: dict[str, Any] = {}
    if request.protect:
        options["protect"] = True
    if request.HasField("retainOnDelete") and request.retainOnDelete:
        options["retainOnDelete"] = True
    aliases = [json_format.MessageToDict(alias) for alias in request.aliases] + list(request.aliasURNs)
    if aliases:
        options["aliases"] = aliases
    if request.provider:  # "<provider URN>::<id>": an explicit provider (Vault's, a YAML render provider), not the default
        options["provider"] = request.provider.rsplit("::", 1)[0]
    return options


@dataclass
class Recording:
    registrations: list[Registration] = field(default_factory=list)
    generated: dict[str, str] = field(default_factory=dict)


def run(program: Callable[[], Any], stack: str, config: dict[str, str], project: str = "somaagenthub") -> Recording:
    """Run ``program`` as the engine would run a Pulumi program, against fresh mocks.

    Each call starts from a clean runtime (root resource, config), so one process can render
    several stacks in a row, as the tests do.
    """
    mocks = PlanMocks()
    monitor = RecordingMonitor(mocks)
    # Pulumi's runtime schedules on the thread's current event loop; a caller that ran asyncio.run() before
    # (an async test, a service's client) leaves none, so give the thread one
    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    runtime_settings.ROOT.set(None)
    set_all_config(config, [])
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    _sync_await(run_pulumi_func(program))
    if monitor.duplicates:
        raise DuplicateUrnError("the engine would refuse duplicate URNs:\n" + "\n".join(f"  - {u}" for u in monitor.duplicates))
    return Recording(registrations=monitor.registrations, generated=dict(mocks.generated))
