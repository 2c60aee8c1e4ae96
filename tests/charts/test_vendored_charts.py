"""Every chart the program installs is vendored from its upstream release tag, byte for byte as the
catalog records it; the vendoring tool reproduces upstream's packaging and refuses what does not match."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components import catalog
from policies.catalog import content_digest
from tools import vendor_chart
from tools.vendor_chart import Source, VendorError, assemble, rewrite_entry

ROOT = Path(__file__).resolve().parents[2]
LOCK = catalog.load()
LICENSES = ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING")


@pytest.mark.parametrize("key", sorted(LOCK.charts))
def test_vendored_bytes_match_the_catalog_digest(key):
    chart = LOCK.charts[key]
    assert chart.folder.is_dir(), f"{chart.path} is missing"
    assert content_digest(chart.folder) == chart.digest, f"{chart.path} drifted from platform.lock.yaml; re-vendor it"


def test_every_vendored_folder_is_a_catalog_chart():
    folders = {p.name for p in (ROOT / "charts").iterdir() if p.is_dir()}
    assert folders == set(LOCK.charts), f"unlisted: {sorted(folders - set(LOCK.charts))}, missing: {sorted(set(LOCK.charts) - folders)}"


def test_every_vendored_file_is_committed():
    """Upstream charts ship .gitignore files that ignore their own subcharts and Chart.lock; a
    vendored file git ignores would be missing from every clone (and from CI)."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others", "--exclude-standard", "charts"],
                            capture_output=True, text=True)
    if listed.returncode:
        pytest.skip("not a git checkout")
    on_disk = {p.relative_to(ROOT).as_posix() for p in (ROOT / "charts").rglob("*") if p.is_file()}
    assert on_disk - set(listed.stdout.splitlines()) == set(), "git ignores these vendored files; add them with git add -f"


def test_an_added_or_edited_file_changes_the_digest(tmp_path):
    copy = tmp_path / "vault"
    shutil.copytree(LOCK.charts["vault"].folder, copy)
    assert content_digest(copy) == LOCK.charts["vault"].digest
    (copy / "templates" / "extra.yaml").write_text("kind: ConfigMap\n")
    added = content_digest(copy)
    (copy / "templates" / "extra.yaml").unlink()
    (copy / "values.yaml").write_text((copy / "values.yaml").read_text() + "\n# edited\n")
    assert len({added, content_digest(copy), LOCK.charts["vault"].digest}) == 3


@pytest.mark.parametrize("key", sorted(LOCK.charts))
def test_vendored_chart_is_the_pinned_release_with_its_licenses_and_dependencies(key):
    chart = LOCK.charts[key]
    meta = yaml.safe_load((chart.folder / "Chart.yaml").read_text())
    assert str(meta["version"]).lstrip("v") == chart.version.lstrip("v")
    record = vendor_chart.load_vendored_records()[key]
    for folder in [chart.folder, *(chart.folder / "charts" / d["name"] for d in record["dependencies"])]:
        assert any((folder / name).exists() for name in LICENSES), f"{folder.relative_to(ROOT)} has no license file"
    for dep in record["dependencies"]:
        sub = yaml.safe_load((chart.folder / "charts" / dep["name"] / "Chart.yaml").read_text())
        assert str(sub["version"]) == str(dep["version"]), dep
    declared = {d["name"] for d in meta.get("dependencies") or []}
    present = {p.name for p in (chart.folder / "charts").iterdir()} if (chart.folder / "charts").is_dir() else set()
    assert declared <= present, f"{key}: Chart.yaml needs {sorted(declared - present)}, which are not vendored"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.test", "-c", "user.name=t", *args],
                   check=True, capture_output=True)


def _repo(root: Path, name: str, files: dict[str, str], tag: str) -> Path:
    repo = root / name / "repo"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q")
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "release")
    _git(repo, "tag", tag)
    return repo


@pytest.fixture
def upstreams(tmp_path, monkeypatch):
    """Two local upstream repositories: a chart whose release stamps its version, and a dependency."""
    monkeypatch.setattr(vendor_chart, "MIRRORS", tmp_path / "mirrors")
    _repo(tmp_path / "mirrors", "acme+charts", {
        "LICENSE": "Apache-2.0\n",
        "deploy/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.0.0-placeholder\n"
                                 "dependencies:\n  - name: db\n    version: 2.1.0\n    repository: https://charts.example.test\n",
        "deploy/app/values.yaml": "replicas: 1\n",
        "deploy/app/templates/cm.yaml": "kind: ConfigMap\n",
    }, "app-1.4.0")
    _repo(tmp_path / "mirrors", "acme+db", {
        "charts/db/Chart.yaml": "apiVersion: v2\nname: db\nversion: 2.1.0\n",
        "charts/db/LICENSE": "MIT\n",
    }, "db-2.1.0")
    return tmp_path


def test_vendoring_reproduces_packaging_and_records_the_source(upstreams):
    into = upstreams / "out" / "app"
    record = assemble("app", "1.4.0", Source("github.com/acme/charts", "app-1.4.0", "deploy/app"),
                      {"db": Source("github.com/acme/db", "db-2.1.0", "charts/db")}, ["set-chart-version"], into)
    assert yaml.safe_load((into / "Chart.yaml").read_text())["version"] == "1.4.0"
    assert (into / "LICENSE").read_text() == "Apache-2.0\n"
    assert (into / "charts" / "db" / "Chart.yaml").exists()
    assert record.packaging == ["set-chart-version", "copy-license"]
    assert record.upstream["tag"] == "app-1.4.0" and len(record.upstream["commit"]) == 40
    assert [(d["name"], d["version"], d["tag"]) for d in record.dependencies] == [("db", "2.1.0", "db-2.1.0")]
    assert record.digest == content_digest(into)


def test_vendoring_refuses_a_version_mismatch_and_a_missing_dependency(upstreams):
    with pytest.raises(VendorError, match="is chart version 0.0.0-placeholder, not 1.4.0"):
        assemble("app", "1.4.0", Source("github.com/acme/charts", "app-1.4.0", "deploy/app"), {}, [], upstreams / "a")
    with pytest.raises(VendorError, match="dependency db 2.1.0 .* needs --dep db="):
        assemble("app", "1.4.0", Source("github.com/acme/charts", "app-1.4.0", "deploy/app"), {},
                 ["set-chart-version"], upstreams / "b")
    with pytest.raises(VendorError, match="must read <repository>@<tag or commit>:<path>"):
        Source.parse("github.com/acme/db:charts/db")


def test_rewriting_an_entry_keeps_comments_and_other_entries():
    text = ("charts:\n  app:\n    repository: https://charts.example.test\n    chart: app\n    version: 1.3.0\n"
            "    # why this chart\n    source: old\n  other:\n    version: 9.9.9\nimages: {}\n")
    record = vendor_chart.Vendored(key="app", version="1.4.0", digest="sha256:" + "ab" * 32,
                                   upstream={"git": "github.com/acme/charts", "tag": "app-1.4.0", "commit": "c" * 40, "path": "deploy/app"})
    out = rewrite_entry(text, record)
    document = yaml.safe_load(out)
    assert document["charts"]["app"]["version"] == "1.4.0"
    assert document["charts"]["app"]["vendored"]["upstream"]["tag"] == "app-1.4.0"
    assert document["charts"]["app"]["source"] == "https://github.com/acme/charts/tree/app-1.4.0/deploy/app (commit " + "c" * 40 + ")"
    assert "# why this chart" in out and document["charts"]["other"] == {"version": "9.9.9"}
    assert yaml.safe_load(rewrite_entry(out, record)) == document  # idempotent


def _upstream_reachable(git: str) -> bool:
    name = git.removeprefix("github.com/").replace("/", "+")
    return (vendor_chart.MIRRORS / name / "repo").is_dir()


@pytest.mark.parametrize("key", sorted(LOCK.charts))
def test_re_vendoring_from_the_recorded_commits_gives_the_same_bytes(key, tmp_path):
    record = vendor_chart.load_vendored_records()[key]
    sources = [record["upstream"]["git"], *(d["git"] for d in record["dependencies"])]
    if not all(_upstream_reachable(git) for git in sources):
        pytest.skip(f"upstream Git repositories of {key} are not on this machine ({vendor_chart.MIRRORS}); "
                    "a workstation re-vendors with `make vendor-chart NAME=... AGAIN=1`")
    upstream = Source(record["upstream"]["git"], record["upstream"]["commit"], record["upstream"]["path"])
    deps = {d["name"]: Source(d["git"], d["commit"], d["path"], tuple(d.get("packaging", ()))) for d in record["dependencies"]}
    steps = [s for s in record["packaging"] if s != "copy-license"]
    again = assemble(key, record["version"], upstream, deps, steps, tmp_path / key)
    assert again.digest == record["digest"]


PACKAGE_RULE = ("$(bin_dir)/cert-manager-$(VERSION).tgz: $(bin_dir)/helm/cert-manager/README.md "
                "$(bin_dir)/helm/cert-manager/Chart.yaml $(bin_dir)/helm/cert-manager/values.yaml $(HELM_TEMPLATE_TARGETS) "
                "$(bin_dir)/helm/cert-manager/templates/_helpers.tpl $(bin_dir)/helm/cert-manager/.helmignore "
                "| $(NEEDS_HELM) $(bin_dir)/helm/cert-manager")
CERT_MANAGER_MK = "\n".join([
    "HELM_TEMPLATE_SOURCES=$(wildcard deploy/charts/cert-manager/templates/*.yaml)",
    PACKAGE_RULE,
    '\t$(HELM) package --app-version=$(VERSION) --version=$(VERSION) --destination "$(dir $@)" ./$(bin_dir)/helm/cert-manager',
    '\tsed -e "s:{{RELEASE_VERSION}}:$(VERSION):g" < $< > $@',
    "\t\t'.annotations.\"artifacthub.io/signKey\" = strenv(SIGNKEY_ANNOTATION) | .annotations.\"artifacthub.io/prerelease\" "
    "= \"$(IS_PRERELEASE)\" | .version = \"$(VERSION)\" | .appVersion = \"$(VERSION)\"' \\",
]) + "\n"
"""A cut-down make/manifests.mk of cert-manager: the package rule (without NOTES.txt, to show the
step follows the rule rather than a list of its own) and the recipe lines the step reproduces."""


def _cert_manager_upstream(root: Path, tag: str, makefile: str = CERT_MANAGER_MK) -> None:
    chart = "deploy/charts/cert-manager"
    _repo(root / "mirrors", "acme+cert-manager", {
        "LICENSE": "Apache-2.0\n",
        "make/manifests.mk": makefile,
        f"{chart}/Chart.yaml": "apiVersion: v2\nname: cert-manager\nannotations:\n  artifacthub.io/license: Apache-2.0\n"
                               "maintainers:\n  - name: m\n# set by the release tool\nversion: v0.0.0\nappVersion: v0.0.0\n",
        f"{chart}/signkey_annotation.txt": "fingerprint: ABC123\nurl: https://keys.example.test/k.gpg\n",
        f"{chart}/README.template.md": "helm install --version {{RELEASE_VERSION}}\n",
        f"{chart}/values.yaml": "replicaCount: 1\n",
        f"{chart}/.helmignore": "tests/\n",
        f"{chart}/.gitignore": "charts/*\n",
        f"{chart}/values.linter.exceptions": "x\n",
        f"{chart}/templates/deployment.yaml": "kind: Deployment\n",
        f"{chart}/templates/_helpers.tpl": "{{/* helpers */}}\n",
        f"{chart}/templates/NOTES.txt": "not in this package rule\n",
        f"{chart}/tests/deployment_test.yaml": "suite: x\n",
    }, tag)


def test_cert_manager_packaging_reproduces_the_release_makefile(tmp_path, monkeypatch):
    monkeypatch.setattr(vendor_chart, "MIRRORS", tmp_path / "mirrors")
    _cert_manager_upstream(tmp_path, "v1.2.3")
    into = tmp_path / "out" / "cert-manager"
    record = assemble("cert-manager", "v1.2.3", Source("github.com/acme/cert-manager", "v1.2.3", "deploy/charts/cert-manager"),
                      {}, ["cert-manager-release-chart"], into)
    meta = yaml.safe_load((into / "Chart.yaml").read_text())
    assert (meta["version"], meta["appVersion"]) == ("v1.2.3", "v1.2.3")
    assert meta["annotations"] == {"artifacthub.io/license": "Apache-2.0", "artifacthub.io/prerelease": "false",
                                   "artifacthub.io/signKey": "fingerprint: ABC123\nurl: https://keys.example.test/k.gpg\n"}
    assert (into / "README.md").read_text() == "helm install --version v1.2.3\n"
    files = sorted(p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file())
    # exactly the package rule's files (NOTES.txt is not in this cut-down rule), plus the license
    assert files == [".helmignore", "Chart.yaml", "LICENSE", "README.md", "templates/_helpers.tpl",
                     "templates/deployment.yaml", "values.yaml"]
    assert record.packaging == ["cert-manager-release-chart", "copy-license"]


def test_cert_manager_packaging_marks_a_prerelease_and_refuses_a_changed_makefile(tmp_path, monkeypatch):
    monkeypatch.setattr(vendor_chart, "MIRRORS", tmp_path / "mirrors")
    _cert_manager_upstream(tmp_path, "v1.3.0-beta.0")
    source = Source("github.com/acme/cert-manager", "v1.3.0-beta.0", "deploy/charts/cert-manager")
    assemble("cert-manager", "v1.3.0-beta.0", source, {}, ["cert-manager-release-chart"], tmp_path / "beta")
    assert yaml.safe_load((tmp_path / "beta" / "Chart.yaml").read_text())["annotations"]["artifacthub.io/prerelease"] == "true"

    changed = tmp_path / "changed-upstream"
    _cert_manager_upstream(changed, "v1.4.0", CERT_MANAGER_MK.replace("--app-version=$(VERSION) ", ""))
    monkeypatch.setattr(vendor_chart, "MIRRORS", changed / "mirrors")
    with pytest.raises(VendorError, match="no longer has"):
        assemble("cert-manager", "v1.4.0", Source("github.com/acme/cert-manager", "v1.4.0", "deploy/charts/cert-manager"),
                 {}, ["cert-manager-release-chart"], tmp_path / "changed")
    assert not (tmp_path / "changed" / "README.md").exists()


def test_the_vendored_cert_manager_chart_is_the_packaged_release():
    chart = LOCK.charts["cert-manager"]
    meta = yaml.safe_load((chart.folder / "Chart.yaml").read_text())
    assert meta["version"] == meta["appVersion"] == chart.version
    assert meta["annotations"]["artifacthub.io/prerelease"] == "false"
    assert meta["annotations"]["artifacthub.io/signKey"].startswith("fingerprint: ")
    left_out = ("README.template.md", "signkey_annotation.txt", "tests", "values.linter.exceptions", ".gitignore")
    assert [name for name in left_out if (chart.folder / name).exists()] == []
    assert "{{RELEASE_VERSION}}" not in (chart.folder / "README.md").read_text()
