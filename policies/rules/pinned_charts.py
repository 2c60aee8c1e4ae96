"""pinned-charts: every Helm chart is deployed from its vendored folder, at the catalog's version and bytes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..catalog import REPO_ROOT, catalog_or_problem, folder_stamp, vendored_digest
from ..model import Finding, ResourceView, Unresolved, Violation, contains_unknown, is_unknown
from ..rule import Rule, RuleConfig, Severity

CHART_TYPES = frozenset({"kubernetes:helm.sh/v4:Chart", "kubernetes:helm.sh/v3:Release"})
RELEASE = "kubernetes:helm.sh/v3:Release"
EXACT_SEMVER = re.compile(r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def check(resource: ResourceView, config: RuleConfig) -> Iterator[Finding]:
    if resource.type not in CHART_TYPES:
        return
    if resource.type == RELEASE:
        # A Release's objects never become Pulumi resources, so no rule would ever see its pods.
        yield Violation(f"helm.v3.Release '{resource.object_name}' deploys objects the gate cannot judge; "
                        "use helm.v4.Chart (the kit's chart block), whose objects are registered and checked")
        return
    chart, version = resource.props.get("chart"), resource.props.get("version")
    for value, path in ((chart, "chart"), (version, "version")):
        if is_unknown(value):
            yield Unresolved(path, value.sentinel)
            return
    for key in ("values", "namespace", "name", "skipCrds"):
        # The provider registers no children at all while any input is unknown ("Preview is
        # incomplete"), so the pods of such a chart would pass unjudged: undecidable, not passed.
        if contains_unknown(resource.props.get(key)):
            yield Unresolved(key, "unknown during preview")
            return
    if not isinstance(version, str) or not EXACT_SEMVER.match(version):
        yield Violation(f"chart '{chart}' version '{version or ''}' is not an exact semver version")
    if resource.props.get("repositoryOpts") or not isinstance(chart, str) or "://" in chart:
        yield Violation(f"chart '{chart}' is fetched from a repository; deploy the vendored folder (charts/<key>) "
                        "so the bytes the gate checked are the bytes deployed")
        return
    catalog, problem = catalog_or_problem(config)
    if catalog is None:
        yield Violation(problem)
        return
    entry = catalog.charts_by_path.get(chart.removeprefix("./").rstrip("/"))  # a leading / leaves the repository
    if entry is None:
        known = ", ".join(sorted(catalog.charts_by_path)) or "none"
        yield Violation(f"chart '{chart}' is not a vendored chart of platform.lock.yaml (vendored: {known})")
        return
    if isinstance(version, str) and version != entry.version:
        yield Violation(f"chart '{chart}' version '{version}' does not match platform.lock.yaml ({entry.version})")
    folder = REPO_ROOT / entry.path
    if not (folder / "Chart.yaml").is_file():
        yield Violation(f"chart '{chart}': the vendored folder {entry.path} is missing")
    elif vendored_digest(folder, folder_stamp(folder)) != entry.digest:
        yield Violation(f"chart '{chart}': the vendored files differ from platform.lock.yaml's digest {entry.digest}; "
                        "re-vendor it with `make vendor-chart` or restore the upstream bytes")


RULE = Rule(
    name="pinned-charts",
    description=(
        "Every Helm chart is a helm.v4.Chart (a v3 Release's objects are never judged) deployed from its vendored "
        "folder charts/<key>, at the exact version platform.lock.yaml pins, and the folder's files still match the "
        "digest recorded when it was vendored from its upstream release tag; a chart with an input unknown during "
        "preview is undecidable (the provider registers none of its objects then)."
    ),
    severity=Severity.HIGH,
    remediation=(
        "Deploy charts through the kit's chart building block with catalog.chart('<key>'), which passes the "
        "vendored folder and version. To add or upgrade a chart, run `make vendor-chart NAME=<key> VERSION=<v> "
        "GIT=<repository> TAG=<tag> CHART_PATH=<folder>`, which copies the release from its upstream Git tag and "
        "rewrites the catalog entry; never edit a vendored file by hand."
    ),
    check_resource=check,
    config_schema={
        "catalogPath": {
            "type": "string",
            "default": "platform.lock.yaml",
            "description": "Catalog file; relative paths are relative to the repository root.",
        },
    },
)
