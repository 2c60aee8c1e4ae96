"""Helm's own template engine, behind one small function.

``template()`` renders a local chart folder the way ``helm template`` does, for a given
Kubernetes version and set of API versions. It uses PyPI ``helm-python-sdk`` (Helm v4's Go SDK
through ctypes), pinned exactly because it is young; where a Helm CLI exists, ``HELM_ENGINE=cli``
runs ``helm template`` instead and nothing else changes.

Helm prints warnings about values (``destination for x is a table``) on the process's stderr,
not through an API; they are captured here because a warning about our values fails the render.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

_STDERR_LOCK = threading.Lock()


class HelmTemplateError(RuntimeError):
    """Helm refused to render the chart; the message is Helm's."""


@dataclass(frozen=True)
class Rendered:
    """Helm's output: template path -> manifest text, and the warnings it printed."""

    manifests: Mapping[str, str]
    warnings: tuple[str, ...]


def engine_versions() -> dict[str, str]:
    """Which Helm does the rendering (for the contracts doc and the render summary)."""
    if os.environ.get("HELM_ENGINE") == "cli":
        out = subprocess.run(["helm", "version", "--short"], capture_output=True, text=True, check=False).stdout.strip()
        return {"engine": "helm CLI", "helm": out}
    import helm_python

    return {"engine": "helm-python-sdk " + helm_python.__version__, "helm": helm_python.helm_sdk_version()}


def _capture_stderr(call):
    """Run ``call`` with file descriptor 2 sent to a temporary file; return (result, text)."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            result = call()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        return result, sink.read().decode("utf-8", "replace")


def _warnings(stderr: str) -> tuple[str, ...]:
    lines = []
    for line in stderr.splitlines():
        text = line.split(" ", 2)[-1] if line[:4].isdigit() else line  # drop Go's log date and time
        if text.strip():
            lines.append(text.strip())
    return tuple(dict.fromkeys(lines))


def _sdk_template(chart_dir: Path, values: Mapping[str, Any], release: str, namespace: str,
                  kube_version: str, api_versions: Sequence[str]) -> Rendered:
    import helm_python
    from helm_python import _native

    opts = {"name": release, "namespace": namespace, "kube_version": kube_version,
            "api_versions": list(api_versions), "is_install": True}

    def call() -> str:
        with helm_python.Chart.load(str(chart_dir)) as chart:
            chart.validate_schema(dict(values))  # values.schema.json, as `helm install` checks it
            # Chart.render() exposes name and namespace only; the library's render options also
            # take kube_version and api_versions, which `helm template` sets with its flags.
            return _native.call_string("helm_render", chart._raw(), json.dumps(dict(values)), json.dumps(opts))

    try:
        raw, stderr = _capture_stderr(call)
    except helm_python.HelmError as err:
        raise HelmTemplateError(str(err)) from err
    return Rendered(manifests=json.loads(raw), warnings=_warnings(stderr))


def _cli_template(chart_dir: Path, values: Mapping[str, Any], release: str, namespace: str,
                  kube_version: str, api_versions: Sequence[str]) -> Rendered:
    if not shutil.which("helm"):
        raise HelmTemplateError("HELM_ENGINE=cli but no helm on PATH")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(dict(values), handle)
        handle.flush()
        command = ["helm", "template", release, str(chart_dir), "--namespace", namespace, "-f", handle.name,
                   "--kube-version", kube_version, "--no-hooks"]
        for api in api_versions:
            command += ["--api-versions", api]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise HelmTemplateError(result.stderr.strip())
    documents: dict[str, str] = {}
    current = "(stdout)"
    for line in result.stdout.splitlines(keepends=True):
        if line.startswith("# Source: "):
            current = line.removeprefix("# Source: ").strip()
        documents[current] = documents.get(current, "") + line
    return Rendered(manifests=documents, warnings=_warnings(result.stderr))


def template(chart_dir: Path, values: Mapping[str, Any], *, release: str, namespace: str,
             kube_version: str, api_versions: Sequence[str] = ()) -> Rendered:
    """Render ``chart_dir`` with ``values``; raise :class:`HelmTemplateError` with Helm's message."""
    render = _cli_template if os.environ.get("HELM_ENGINE") == "cli" else _sdk_template
    return render(Path(chart_dir), values, release, namespace, kube_version, api_versions)


def chart_defaults(chart_dir: Path, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The chart's default values coalesced with ``values`` (subcharts' defaults under their keys)."""
    import helm_python

    with helm_python.Chart.load(str(chart_dir)) as chart:
        return chart.merge_values(dict(values or {}))


def chart_schema(chart_dir: Path) -> dict[str, Any] | None:
    path = Path(chart_dir) / "values.schema.json"
    return json.loads(path.read_text()) if path.exists() else None
