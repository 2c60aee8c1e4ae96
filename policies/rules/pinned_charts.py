"""pinned-charts: every Helm chart is an exact catalog version from an allowed https/oci repository."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..catalog import CatalogError, load_catalog, normalise_repo_url
from ..model import Finding, ResourceView, Unresolved, Violation, dig, is_unknown
from ..rule import Rule, RuleConfig, Severity

CHART_TYPES = frozenset({"kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release"})
EXACT_SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
SCHEMES = ("https://", "oci://")


def _source(props: dict[str, Any]) -> tuple[Any, Any]:
    """(repository, chart name); ``chart: oci://host/path/name`` carries its repository inline."""
    chart = props.get("chart")
    if isinstance(chart, str) and chart.startswith("oci://"):
        repository, _, name = chart.rpartition("/")
        return repository, name
    return dig(props, "repositoryOpts", "repo"), chart


def check(resource: ResourceView, config: RuleConfig) -> Iterator[Finding]:
    if resource.type not in CHART_TYPES:
        return
    repository, chart = _source(dict(resource.props))
    version = resource.props.get("version")
    for value, path in ((repository, "repositoryOpts.repo"), (chart, "chart"), (version, "version")):
        if is_unknown(value):
            yield Unresolved(path, value.sentinel)
            return
    exact = isinstance(version, str) and EXACT_SEMVER.match(version) is not None
    if not exact:
        yield Violation(f"chart '{chart}' version '{version or ''}' is not an exact semver version")
    if not isinstance(repository, str) or not repository.startswith(SCHEMES):
        yield Violation(f"chart '{chart}' repository '{repository or ''}' must be an https:// or oci:// URL")
        return
    try:
        catalog = load_catalog(config.get("catalogPath"))
    except CatalogError as error:
        yield Violation(str(error))
        return
    repo = normalise_repo_url(repository)
    extra = {normalise_repo_url(str(url)) for url in config.get("extraChartRepositories", [])}
    if repo not in catalog.chart_repositories and repo not in extra:
        yield Violation(f"chart '{chart}' repository '{repository}' is not on the allow list")
        return
    entries = [c for c in catalog.charts if c.chart == chart and c.repository == repo]
    if not entries:
        yield Violation(f"chart '{chart}' from '{repository}' is not in platform.lock.yaml")
    elif exact and version not in {entry.version for entry in entries}:
        pinned = ", ".join(sorted({entry.version for entry in entries}))
        yield Violation(f"chart '{chart}' version '{version}' does not match platform.lock.yaml ({pinned})")


RULE = Rule(
    name="pinned-charts",
    description=(
        "Every Helm chart (Chart v4 and Release) names an exact version from a repository on the "
        "allow list (https:// or oci://), and that chart and version are the ones platform.lock.yaml pins."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Deploy charts through the kit's chart building block with catalog.chart('<key>'), which takes the repository, "
        "name and version from platform.lock.yaml. To add or upgrade a chart, change its entry in "
        "platform.lock.yaml (exact version, https:// or oci:// repository, and the source the "
        "version was read from); never write a range, 'latest' or an empty version."
    ),
    check_resource=check,
    config_schema={
        "catalogPath": {
            "type": "string",
            "default": "platform.lock.yaml",
            "description": "Catalog file; relative paths are relative to the repository root.",
        },
        "extraChartRepositories": {
            "type": "array",
            "items": {"type": "string"},
            "default": [],
            "description": "Chart repositories allowed besides those the catalog lists.",
        },
    },
)
