"""Vendor one upstream Helm chart into ``charts/<key>/`` and rewrite its catalog entry.

The bytes the offline render checks are the bytes ``pulumi up`` deploys, so every chart comes
from its upstream project's Git repository at the release tag, its subcharts from theirs at the
versions Chart.lock (or Chart.yaml) requires, and whatever upstream's release packaging changes
in the tree is reproduced here by a named step, recorded in the catalog:

    python -m tools.vendor_chart --key loki --version 18.11.0 \\
        --git github.com/grafana-community/helm-charts --tag loki-18.11.0 --path charts/loki \\
        --dep minio=github.com/minio/minio@43a740296:helm/minio \\
        --dep rollout-operator=github.com/grafana/helm-charts@rollout-operator-0.51.1:charts/rollout-operator

``--git`` names a repository; it is read from a local clone when ``CHART_GIT_MIRRORS`` (default
``/work/.mirror``) holds ``<owner>+<name>/repo``, otherwise cloned from https. ``--again`` re-vendors
exactly what the catalog records (a reproducibility check). Nothing is written unless the whole
chart, dependencies included, was assembled and its versions match.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.catalog import LOCK_FILE, VENDOR_ROOT, load_vendored_records
from policies.catalog import content_digest

ROOT = Path(__file__).resolve().parent.parent
MIRRORS = Path(os.environ.get("CHART_GIT_MIRRORS", "/work/.mirror"))
LICENSE_NAMES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING")
PACKAGING_STEPS = {
    "set-chart-version": "Chart.yaml version and appVersion set to the release version, as upstream's "
    "release runs `helm package --version <v> --app-version <v>` over a placeholder",
    "copy-license": "the repository's license file copied into the chart folder (the chart folder has none)",
    "external-secrets-crds": "CRDs copied into templates/crds/ from deploy/crds/bundle.yaml as upstream's release runs "
    "`make helm.generate` (hack/helm.generate.sh): one file per CRD, wrapped in its installCRDs/crds.create<Kind> "
    "switch, webhook name and namespace templated, crds.annotations and the cert-manager annotation added",
    "cert-manager-release-chart": "the chart folder as cert-manager's make/manifests.mk (read at the same commit) stages it "
    "for `helm package`: version and appVersion set to the release, artifacthub.io/signKey (signkey_annotation.txt) and "
    "artifacthub.io/prerelease added to Chart.yaml as its yq step does, README.md rendered from README.template.md, and "
    "only the files the package target lists kept",
}
CERT_MANAGER_MAKEFILE = "make/manifests.mk"
CERT_MANAGER_RECIPE = (
    "$(HELM) package --app-version=$(VERSION) --version=$(VERSION)",
    '.annotations."artifacthub.io/signKey" = strenv(SIGNKEY_ANNOTATION) | .annotations."artifacthub.io/prerelease" '
    '= "$(IS_PRERELEASE)" | .version = "$(VERSION)" | .appVersion = "$(VERSION)"',
    'sed -e "s:{{RELEASE_VERSION}}:$(VERSION):g"',
    "HELM_TEMPLATE_SOURCES=$(wildcard deploy/charts/cert-manager/templates/*.yaml)",
)
"""The lines of make/manifests.mk that cert_manager_release_chart reproduces; if upstream changes
any of them, vendoring stops so the step is reviewed instead of silently drifting."""
ESO_ANNOTATIONS = (
    "    {{- with .Values.crds.annotations }}\n"
    "    {{- toYaml . | nindent 4}}\n"
    "    {{- end }}\n"
    "    {{- if and .Values.crds.conversion.enabled .Values.webhook.certManager.enabled "
    ".Values.webhook.certManager.addInjectorAnnotations }}\n"
    '    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "external-secrets.fullname" . }}-webhook\n'
    "    {{- end }}\n"
)


class VendorError(RuntimeError):
    """The chart cannot be vendored as asked; nothing was written."""


@dataclass(frozen=True)
class Source:
    """A folder of a Git repository at a tag or commit."""

    git: str
    ref: str
    path: str
    steps: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Source":
        """``<repository>@<tag or commit>:<path>[+<packaging step>...]``."""
        match = re.fullmatch(r"(?P<git>[^@\s]+)@(?P<ref>[^:\s]+):(?P<path>[^+\s]+)(?P<steps>(\+[a-z-]+)*)", text)
        if not match:
            raise VendorError(f"source {text!r} must read <repository>@<tag or commit>:<path>[+<step>]")
        steps = tuple(s for s in match["steps"].split("+") if s)
        unknown = [s for s in steps if s not in PACKAGING_STEPS]
        if unknown:
            raise VendorError(f"unknown packaging step(s) {unknown} in {text!r}; known: {sorted(PACKAGING_STEPS)}")
        return cls(match["git"], match["ref"], match["path"].strip("/") or ".", steps)


@dataclass
class Vendored:
    """What was vendored, as the catalog records it."""

    key: str
    version: str
    upstream: dict
    packaging: list[str] = field(default_factory=list)
    dependencies: list[dict] = field(default_factory=list)
    digest: str = ""


def git_dir(repository: str) -> Path:
    """A local Git directory for ``github.com/<owner>/<name>``: a mirror, or a fresh bare clone."""
    name = repository.removeprefix("https://").removeprefix("github.com/").strip("/")
    mirror = MIRRORS / name.replace("/", "+") / "repo"
    if mirror.is_dir():
        return mirror
    cache = Path(tempfile.gettempdir()) / "chart-sources" / name.replace("/", "+")
    if not cache.is_dir():
        url = repository if repository.startswith("https://") else f"https://{repository}"
        subprocess.run(["git", "clone", "--quiet", "--bare", url, str(cache)], check=True)
    return cache


def _git(repo: Path, *args: str) -> bytes:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    if result.returncode:
        raise VendorError(f"git {' '.join(args)} in {repo}: {result.stderr.decode().strip()}")
    return result.stdout


def export(source: Source, into: Path) -> str:
    """Write ``source.path`` at ``source.ref`` into ``into``; return the commit it resolved to."""
    repo = git_dir(source.git)
    commit = _git(repo, "rev-parse", f"{source.ref}^{{commit}}").decode().strip()
    at_root = source.path in ("", ".")
    archive = _git(repo, "archive", "--format=tar", commit, *([] if at_root else [source.path]))
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        prefix = "" if at_root else source.path + "/"
        for member in tar.getmembers():
            if not member.name.startswith(prefix) or member.issym() or member.islnk():
                if member.issym() or member.islnk():
                    raise VendorError(f"{source.git}@{source.ref}:{member.name} is a link; vendor its target instead")
                continue
            relative = member.name[len(prefix):]
            target = into / relative
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
    if not (into / "Chart.yaml").is_file():
        raise VendorError(f"{source.git}@{source.ref}:{source.path} has no Chart.yaml")
    return commit


def repository_license(source: Source) -> tuple[str, bytes] | None:
    repo = git_dir(source.git)
    for name in LICENSE_NAMES:
        result = subprocess.run(["git", "-C", str(repo), "show", f"{source.ref}:{name}"], capture_output=True)
        if result.returncode == 0:
            return name, result.stdout
    return None


def chart_metadata(folder: Path) -> dict:
    return yaml.safe_load((folder / "Chart.yaml").read_text()) or {}


def required_dependencies(folder: Path) -> list[dict]:
    """Dependencies with their exact versions: Chart.lock where there is one, else Chart.yaml."""
    declared = chart_metadata(folder).get("dependencies") or []
    lock_file = folder / "Chart.lock"
    locked = {d["name"]: d for d in (yaml.safe_load(lock_file.read_text()) or {}).get("dependencies", [])} if lock_file.exists() else {}
    required = []
    for dep in declared:
        version = str(locked.get(dep["name"], dep).get("version", dep.get("version", "")))
        required.append({"name": dep["name"], "version": version, "repository": dep.get("repository", "")})
    return required


def _semver_matches(version: str, wanted: str) -> bool:
    """Chart.yaml constraints we meet in practice: exact, a leading v, or a ``x.y.*`` wildcard."""
    version, wanted = version.lstrip("v"), wanted.lstrip("v")
    if wanted.endswith(".*"):
        return version.startswith(wanted[:-1])
    return version == wanted


def set_chart_version(folder: Path, version: str) -> None:
    text = (folder / "Chart.yaml").read_text()
    for key in ("version", "appVersion"):
        text, count = re.subn(rf"(?m)^{key}:.*$", f"{key}: {version}", text, count=1)
        if not count:
            text += f"\n{key}: {version}\n"
    (folder / "Chart.yaml").write_text(text)


def external_secrets_crds(folder: Path, source: Source) -> None:
    """hack/helm.generate.sh of external-secrets, step by step, from the bundle at the same commit.

    Its yq step turns a ``v1alpha1`` version of the ExternalSecret/SecretStore kinds into a
    conditional; no such version exists in the bundles this was written for, so one is refused
    rather than half-reproduced.
    """
    bundle = _git(git_dir(source.git), "show", f"{source.ref}:deploy/crds/bundle.yaml").decode()
    out = folder / "templates" / "crds"
    out.mkdir(parents=True, exist_ok=True)
    for text in re.split(r"(?m)^---\s*$", bundle):
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            continue
        kind, singular = doc["spec"]["names"]["kind"], doc["spec"]["names"]["singular"]
        flag = f"create{kind}"
        body = text.strip("\n") + "\n"
        if "ExternalSecret" in flag or "SecretStore" in flag:
            if any(v.get("name") == "v1alpha1" for v in doc["spec"].get("versions", [])):
                raise VendorError(f"external-secrets bundle: {kind} has a v1alpha1 version, which helm.generate.sh "
                                  "rewrites with yq; that step is not reproduced here")
            body = "".join(line for line in body.splitlines(keepends=True) if "- |-" not in line)
            body = body.replace("       additionalPrinterColumns:", "    - additionalPrinterColumns:")
            body = re.sub(r"(name: v1beta1\n(?:.*\n)*?.*?)served: false",
                          r"\1served: {{ .Values.crds.unsafeServeV1Beta1 }}", body, count=1)
        if "Cluster" in flag or "PushSecret" in flag:
            guard = f"{{{{- if and (.Values.installCRDs) (.Values.crds.{flag}) }}}}\n"
        else:
            guard = "{{- if .Values.installCRDs }}\n"
        body = guard + body + "{{- end }}\n"
        body = body.replace("name: kubernetes", 'name: {{ include "external-secrets.fullname" . }}-webhook')
        body = body.replace("namespace: default", "namespace: {{ .Release.Namespace | quote }}")
        lines = body.splitlines(keepends=True)
        at = next((i for i, line in enumerate(lines) if "annotations" in line), None)
        if at is not None:
            lines.insert(at + 1, ESO_ANNOTATIONS)
        (out / f"{singular}.yaml").write_text("".join(lines))


def _packaged_files(makefile: str) -> tuple[list[str], bool]:
    """The files make/manifests.mk puts in the chart package, read from its ``cert-manager-$(VERSION).tgz``
    rule: (paths relative to the chart folder, whether templates/*.yaml are included)."""
    rule = next((line for line in makefile.splitlines() if line.startswith("$(bin_dir)/cert-manager-$(VERSION).tgz:")), None)
    if rule is None:
        raise VendorError(f"{CERT_MANAGER_MAKEFILE} has no cert-manager-$(VERSION).tgz rule; review the packaging step")
    prerequisites = rule.split(":", 1)[1].split("|", 1)[0].split()
    prefix = "$(bin_dir)/helm/cert-manager/"
    files = [p.removeprefix(prefix) for p in prerequisites if p.startswith(prefix)]
    unknown = [p for p in prerequisites if not p.startswith(prefix) and p != "$(HELM_TEMPLATE_TARGETS)"]
    if unknown:
        raise VendorError(f"{CERT_MANAGER_MAKEFILE}: the package rule needs {unknown}, which the step does not reproduce")
    return files, "$(HELM_TEMPLATE_TARGETS)" in prerequisites


def _with_annotations(chart_yaml: str, added: dict[str, str]) -> str:
    """Chart.yaml text with ``added`` appended to its top-level ``annotations:`` block (where yq puts new keys)."""
    lines = chart_yaml.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.rstrip() == "annotations:")
    except StopIteration as err:
        raise VendorError("Chart.yaml has no top-level annotations block to extend; review the packaging step") from err
    end = start + 1
    while end < len(lines) and (lines[end].startswith("  ") or not lines[end].strip()):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    block = []
    for name, value in added.items():
        if "\n" in value.rstrip("\n"):
            block.append(f"  {name}: |\n" + "".join(f"    {line}\n" for line in value.rstrip("\n").split("\n")))
        else:
            block.append(f"  {name}: {json.dumps(value)}\n")
    return "".join(lines[:end] + block + lines[end:])


def cert_manager_release_chart(folder: Path, source: Source, version: str) -> None:
    """make/manifests.mk of cert-manager: the targets that build ``bin/helm/cert-manager`` before
    ``helm package --app-version=$(VERSION) --version=$(VERSION)``.

    Chart.yaml gets the yq edit (signKey from signkey_annotation.txt, prerelease, version and
    appVersion); README.md is README.template.md with the version substituted; only the files the
    package rule names are kept (tests, the templates of README and Chart annotations, linter files go).
    ``IS_PRERELEASE`` is true when the release tag has a ``-`` (``git describe`` of the tag, grepped for one).
    """
    makefile = _git(git_dir(source.git), "show", f"{source.ref}:{CERT_MANAGER_MAKEFILE}").decode()
    changed = [line for line in CERT_MANAGER_RECIPE if line not in makefile]
    if changed:
        raise VendorError(f"{CERT_MANAGER_MAKEFILE} at {source.ref} no longer has {changed}; review the packaging step")
    files, with_templates = _packaged_files(makefile)
    sign_key = (folder / "signkey_annotation.txt").read_text()
    prerelease = "true" if "-" in version else "false"
    text = _with_annotations((folder / "Chart.yaml").read_text(),
                             {"artifacthub.io/signKey": sign_key, "artifacthub.io/prerelease": prerelease})
    (folder / "Chart.yaml").write_text(text)
    set_chart_version(folder, version)
    meta = chart_metadata(folder)
    annotations = meta.get("annotations") or {}
    if (annotations.get("artifacthub.io/signKey"), annotations.get("artifacthub.io/prerelease")) != (sign_key, prerelease):
        raise VendorError("Chart.yaml annotations did not come out as make/manifests.mk writes them")
    readme = (folder / "README.template.md").read_text()
    (folder / "README.md").write_text(readme.replace("{{RELEASE_VERSION}}", version))
    keep = set(files)
    if with_templates:
        keep |= {p.relative_to(folder).as_posix() for p in (folder / "templates").glob("*.yaml")}
    missing = sorted(keep - {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()})
    if missing:
        raise VendorError(f"the package rule names {missing}, which the chart folder at {source.ref} lacks")
    for path in sorted(folder.rglob("*"), reverse=True):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and relative not in keep:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def assemble(key: str, version: str, upstream: Source, deps: dict[str, Source], steps: list[str], into: Path) -> Vendored:
    """Build the vendored chart in ``into``; raise :class:`VendorError` on any mismatch."""
    unknown = [s for s in steps if s not in PACKAGING_STEPS]
    if unknown:
        raise VendorError(f"unknown packaging step(s) {unknown}; known: {sorted(PACKAGING_STEPS)}")
    commit = export(upstream, into)
    applied: list[str] = []
    if "set-chart-version" in steps:
        set_chart_version(into, version)
        applied.append("set-chart-version")
    if "external-secrets-crds" in steps:
        external_secrets_crds(into, Source(upstream.git, commit, upstream.path))
        applied.append("external-secrets-crds")
    if "cert-manager-release-chart" in steps:
        cert_manager_release_chart(into, Source(upstream.git, commit, upstream.path), version)
        applied.append("cert-manager-release-chart")
    found = str(chart_metadata(into).get("version", ""))
    if found.lstrip("v") != version.lstrip("v"):
        raise VendorError(f"{upstream.git}@{upstream.ref}:{upstream.path} is chart version {found}, not {version}")
    if not any((into / n).exists() for n in LICENSE_NAMES):
        found_license = repository_license(upstream)
        if found_license is None:
            raise VendorError(f"{upstream.git}@{upstream.ref} has no license file; a vendored chart must keep its license")
        (into / found_license[0]).write_bytes(found_license[1])
        applied.append("copy-license")
    record = Vendored(key=key, version=version, packaging=applied,
                      upstream={"git": upstream.git, "tag": upstream.ref, "commit": commit, "path": upstream.path})
    for dep in required_dependencies(into):
        local = into / "charts" / dep["name"]
        if dep["repository"] in ("", None) or dep["repository"].startswith("file://"):
            if not (local / "Chart.yaml").exists():
                raise VendorError(f"{key}: local dependency {dep['name']} is missing from the upstream tree")
            continue
        if dep["name"] not in deps:
            raise VendorError(f"{key}: dependency {dep['name']} {dep['version']} from {dep['repository']} needs "
                              f"--dep {dep['name']}=<repository>@<tag or commit>:<path>")
        source = deps[dep["name"]]
        shutil.rmtree(local, ignore_errors=True)
        dep_commit = export(source, local)
        if "set-chart-version" in source.steps:
            set_chart_version(local, dep["version"])
        dep_version = str(chart_metadata(local).get("version", ""))
        if not _semver_matches(dep_version, dep["version"]):
            raise VendorError(f"{key}: dependency {dep['name']} at {source.git}@{source.ref} is {dep_version}, "
                              f"the chart requires {dep['version']}")
        if not any((local / n).exists() for n in LICENSE_NAMES):
            found_license = repository_license(source)
            if found_license:
                (local / found_license[0]).write_bytes(found_license[1])
        record.dependencies.append({"name": dep["name"], "version": dep_version, "git": source.git,
                                    "tag": source.ref, "commit": dep_commit, "path": source.path,
                                    "packaging": list(source.steps)})
    extra = set(deps) - {d["name"] for d in required_dependencies(into)}
    if extra:
        raise VendorError(f"{key}: --dep given for {sorted(extra)}, which the chart does not require")
    record.digest = content_digest(into)
    return record


def vendored_block(record: Vendored) -> str:
    """The ``vendored:`` block of a catalog entry, in a fixed layout (the file is also read by people)."""
    lines = ["    vendored:",
             f"      path: {VENDOR_ROOT.name}/{record.key}",
             "      upstream: " + yaml.safe_dump(record.upstream, default_flow_style=True, width=400).strip(),
             "      packaging: " + yaml.safe_dump(record.packaging, default_flow_style=True, width=400).strip()]
    if record.dependencies:
        lines.append("      dependencies:")
        lines += ["        - " + yaml.safe_dump(d, default_flow_style=True, width=400, sort_keys=False).strip()
                  for d in record.dependencies]
    else:
        lines.append("      dependencies: []")
    lines.append(f"      digest: {record.digest}")
    return "\n".join(lines) + "\n"


def rewrite_entry(lock_text: str, record: Vendored) -> str:
    """Replace the entry's version and ``vendored:`` block, leaving comments and other entries alone."""
    lines = lock_text.splitlines(keepends=True)
    try:
        charts_at = next(i for i, line in enumerate(lines) if line.rstrip() == "charts:")
        start = next(i for i in range(charts_at + 1, len(lines)) if lines[i].rstrip() == f"  {record.key}:")
    except StopIteration as err:
        raise VendorError(f"charts.{record.key} is not in {LOCK_FILE.name}; add its repository, chart and source first") from err
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].strip() and not lines[i].startswith("    ") and not lines[i].lstrip().startswith("#")), len(lines))
    body = lines[start + 1:end]
    kept: list[str] = []
    skipping = False
    for line in body:
        if line.startswith("    vendored:"):
            skipping = True
            continue
        if skipping and (line.startswith("      ") or not line.strip()):
            continue
        skipping = False
        if re.match(r"^    version:", line):
            line = f"    version: {record.version}\n"
        elif re.match(r"^    source:", line):
            up = record.upstream
            where = up["tag"] if up["path"] == "." else f"{up['tag']}/{up['path']}"
            line = f"    source: 'https://{up['git']}/tree/{where} (commit {up['commit']})'\n"
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return "".join(lines[: start + 1] + kept + [vendored_block(record)] + ["\n"] * (end < len(lines)) + lines[end:])


def vendor(key: str, version: str, upstream: Source, deps: dict[str, Source], steps: list[str]) -> Vendored:
    """Assemble in a scratch folder, then swap it in and rewrite the catalog entry."""
    target = VENDOR_ROOT / key
    with tempfile.TemporaryDirectory(prefix=f"vendor-{key}-") as scratch:
        built = Path(scratch) / key
        record = assemble(key, version, upstream, deps, steps, built)
        new_lock = rewrite_entry(LOCK_FILE.read_text(), record)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(built, target)
    LOCK_FILE.write_text(new_lock)
    return record


def again(key: str) -> Vendored:
    """Re-vendor exactly what the catalog records for ``key``."""
    records = load_vendored_records()
    if key not in records:
        raise VendorError(f"charts.{key} has no vendored record to repeat")
    rec = records[key]
    upstream = Source(rec["upstream"]["git"], rec["upstream"]["commit"], rec["upstream"]["path"])
    deps = {d["name"]: Source(d["git"], d["commit"], d["path"], tuple(d.get("packaging", ())))
            for d in rec.get("dependencies", [])}
    steps = [s for s in rec.get("packaging", []) if s != "copy-license"]
    record = vendor(key, rec["version"], upstream, deps, steps)
    record.upstream["tag"] = rec["upstream"]["tag"]
    for dep, old in zip(record.dependencies, rec.get("dependencies", [])):
        dep["tag"] = old["tag"]
    LOCK_FILE.write_text(rewrite_entry(LOCK_FILE.read_text(), record))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="the chart's key in platform.lock.yaml")
    parser.add_argument("--version")
    parser.add_argument("--git", help="github.com/<owner>/<name> of the chart's upstream repository")
    parser.add_argument("--tag", help="the release tag")
    parser.add_argument("--path", help="the chart's folder in that repository")
    parser.add_argument("--dep", action="append", default=[], metavar="NAME=REPO@REF:PATH")
    parser.add_argument("--step", action="append", default=[], choices=sorted(PACKAGING_STEPS))
    parser.add_argument("--again", action="store_true", help="re-vendor what the catalog records")
    args = parser.parse_args(argv)
    try:
        if args.again:
            record = again(args.key)
        else:
            missing = [f"--{n}" for n in ("version", "git", "tag", "path") if not getattr(args, n)]
            if missing:
                raise VendorError(f"missing {', '.join(missing)} (or use --again)")
            deps = {}
            for item in args.dep:
                name, _, spec = item.partition("=")
                deps[name] = Source.parse(spec)
            record = vendor(args.key, args.version, Source(args.git, args.tag, args.path.strip("/")), deps, args.step)
    except (VendorError, subprocess.CalledProcessError) as err:
        print(f"vendor {args.key}: {err}", file=sys.stderr)
        return 1
    print(f"vendored {args.key} {record.version} from {record.upstream['git']}@{record.upstream['tag']} "
          f"({record.upstream['commit'][:12]}), {len(record.dependencies)} dependencies, {record.digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
