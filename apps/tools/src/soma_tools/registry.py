"""The registry: tools by name and semantic version, each with a JSON schema for its input and its output.

A tool is declared once (``@tool(...)`` on a function, or a :class:`ToolSpec` built directly) and registered
in a :class:`Registry`. Versions are immutable: registering a version that exists is refused, so a caller
that names ``1.0.0`` gets the same tool tomorrow whatever was added since; a caller that names no version
gets the newest. The name is also the OpenFGA object id (``tool:<name>``), so it follows the gateway's id
rule; authorization is per tool name, not per version.

Input is validated before a tool runs and output after it returns (JSON Schema 2020-12); a problem is
reported with the JSON path where it is (``$.query: 3 is not of type 'string'``). jsonschema is imported
only where it is used: the sandbox's child imports this module (tools declare themselves with it) and
jsonschema's import costs about a second of CPU.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")   # an OpenFGA object id (tool:<name>)
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?$")
HOST = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$")
DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024

#: where a tool runs: ``subprocess`` (the sandbox: limits, no network unless declared), ``inprocess``
#: (trusted first-party adapters such as the RAG providers: timeout only), ``remote`` (an external MCP server)
Kind = Literal["subprocess", "inprocess", "remote"]


class ToolNotFound(LookupError):
    pass


class InvalidTool(ValueError):
    """A declaration that cannot be registered (bad name, version, schema, limits, duplicate version)."""


class SchemaViolation(ValueError):
    """Input or output that does not match the tool's schema; ``problems`` are ``<json path>: <message>``."""

    def __init__(self, what: str, problems: list[str]):
        self.what = what
        self.problems = problems
        super().__init__(f"{what} does not match the schema: " + "; ".join(problems))


def version_key(version: str) -> tuple:
    """Semver precedence: numbers, then a release above any of its pre-releases (1.0.0 > 1.0.0-rc.1)."""
    found = SEMVER.match(version)
    if not found:
        raise InvalidTool(f"version {version!r} is not semantic (MAJOR.MINOR.PATCH[-PRE])")
    major, minor, patch, pre = found.groups()
    pre_key = (1,) if pre is None else (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return int(major), int(minor), int(patch), pre_key


@dataclass(frozen=True)
class ToolSpec:
    """One version of one tool.

    ``network``: ``None`` = no network at all; otherwise the hosts (``host`` or ``host:port``) the tool may
    connect to. ``entrypoint`` (``module:qualname``) is how the sandbox's child process finds ``function``;
    the ``@tool`` decorator fills it in, so a tool must live at module level in an importable module.
    ``memory_bytes`` is the child's address space (RLIMIT_AS), not its resident memory: a tool importing
    native libraries that reserve large arenas or thread stacks (numpy with OpenBLAS) needs more than it uses.
    """

    name: str
    version: str
    description: str
    input_schema: dict
    output_schema: dict
    function: Callable[..., Any] | None = None
    timeout_seconds: float = 10.0
    network: tuple[str, ...] | None = None
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    kind: Kind = "subprocess"
    entrypoint: str | None = None
    #: for ``inprocess`` and ``remote`` tools: ``await call(arguments, context) -> output``
    call: Callable[[dict, Any], Awaitable[Any]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problems = []
        if not NAME.match(self.name):
            problems.append(f"name {self.name!r} must match {NAME.pattern} (it is the OpenFGA object id tool:<name>)")
        if not SEMVER.match(self.version):
            problems.append(f"version {self.version!r} is not semantic (MAJOR.MINOR.PATCH[-PRE])")
        for label, schema in (("input_schema", self.input_schema), ("output_schema", self.output_schema)):
            if not isinstance(schema, dict):
                problems.append(f"{label} must be a JSON schema object")
        if not 0 < self.timeout_seconds <= 600:
            problems.append(f"timeout_seconds {self.timeout_seconds} must be in (0, 600]")
        if self.memory_bytes < 32 * 1024 * 1024:
            problems.append(f"memory_bytes {self.memory_bytes} is below 32 MiB (the interpreter alone needs that)")
        for host in self.network or ():
            found = HOST.match(host)
            if not found or (found[1] and not 0 < int(found[1]) < 65536):
                problems.append(f"network host {host!r} is not host or host:port")
        if self.kind == "subprocess" and not self.entrypoint:
            problems.append("a subprocess tool needs an entrypoint (module:qualname)")
        if self.kind != "subprocess" and self.call is None:
            problems.append(f"an {self.kind} tool needs a call")
        if problems:
            raise InvalidTool(f"tool {self.name}@{self.version}: " + "; ".join(problems))

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def check_input(self, value: Any) -> None:
        _check(self.input_schema, value, "input")

    def check_output(self, value: Any) -> None:
        _check(self.output_schema, value, "output")


def tool(*, name: str, version: str, description: str, input_schema: dict, output_schema: dict,
         timeout_seconds: float = 10.0, network: list[str] | tuple[str, ...] | None = None,
         memory_bytes: int = DEFAULT_MEMORY_BYTES) -> Callable[[Callable[..., Any]], ToolSpec]:
    """Declare a function as a sandboxed tool; the function takes the validated input as keyword arguments
    and returns a JSON value. Registering it is a separate step (``Registry.add``): no global registry."""

    def declare(function: Callable[..., Any]) -> ToolSpec:
        if "<locals>" in function.__qualname__:
            raise InvalidTool(f"tool {name}: {function.__qualname__} is not at module level (the sandbox imports it)")
        return ToolSpec(name=name, version=version, description=description, input_schema=input_schema,
                        output_schema=output_schema, function=function, timeout_seconds=timeout_seconds,
                        network=tuple(network) if network is not None else None, memory_bytes=memory_bytes,
                        entrypoint=f"{function.__module__}:{function.__qualname__}")

    return declare


class Registry:
    """Tools by name, each name with its versions; a version once registered never changes."""

    def __init__(self, specs: list[ToolSpec] | tuple[ToolSpec, ...] = ()):
        self._tools: dict[str, dict[str, ToolSpec]] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: ToolSpec) -> ToolSpec:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        for label, schema in (("input_schema", spec.input_schema), ("output_schema", spec.output_schema)):
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                raise InvalidTool(f"tool {spec.ref}: {label} is not a valid JSON schema: {exc.message}") from None
        versions = self._tools.setdefault(spec.name, {})
        if spec.version in versions:
            raise InvalidTool(f"tool {spec.ref} is already registered; a version never changes, register a new one")
        versions[spec.version] = spec
        return spec

    def resolve(self, name: str, version: str | None = None) -> ToolSpec:
        versions = self._tools.get(name)
        if not versions:
            raise ToolNotFound(f"no tool named {name!r}")
        if version is None:
            return versions[max(versions, key=version_key)]
        if version not in versions:
            raise ToolNotFound(f"tool {name!r} has no version {version!r} (it has {', '.join(self.versions(name))})")
        return versions[version]

    def versions(self, name: str) -> list[str]:
        return sorted(self._tools.get(name, {}), key=version_key)

    def newest(self) -> list[ToolSpec]:
        """The newest version of every tool, by name."""
        return [self.resolve(name) for name in sorted(self._tools)]

    def names(self) -> list[str]:
        return sorted(self._tools)


def _check(schema: dict, value: Any, what: str) -> None:
    from jsonschema import Draft202012Validator

    errors = sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        raise SchemaViolation(what, [f"{error.json_path}: {error.message}" for error in errors[:10]])
