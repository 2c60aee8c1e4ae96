"""Which tags the refresh may propose, charts from a Git repository's tags, and the registry's token dance."""
from __future__ import annotations

import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest

from tools.ops import chart_refresh, lockfile, refresh, tags
from tools.ops.registry import Registry, RegistryError

TAGS = ["8.2.3-alpine", "8.2.4-alpine", "8.2.5", "8.2.6-rc1-alpine", "8.3.0-alpine", "9.0.0-alpine", "8.2.5-bookworm"]


@pytest.mark.parametrize("pinned, offered, policy, newest, held", [
    ("8.2.3-alpine", TAGS, "patch", "8.2.4-alpine", ("9.0.0-alpine", "8.3.0-alpine")),
    ("8.2.3-alpine", TAGS, "minor", "8.3.0-alpine", ("9.0.0-alpine",)),
    ("8.2.3-alpine", TAGS, "none", None, ("9.0.0-alpine", "8.3.0-alpine", "8.2.4-alpine")),
    ("v1.21.1", ["v1.21.2", "v1.21.3-beta.0", "1.21.4", "v1.22.0"], "patch", "v1.21.2", ("v1.22.0",)),
    ("distroless-v1.38.3", ["distroless-v1.38.4", "v1.38.5", "distroless-v1.39.0"], "minor", "distroless-v1.39.0", ()),
    ("17.8-202602201511-system-trixie", ["17.8-202603010900-system-trixie", "17.8-202603010900-system-bookworm",
                                         "18.1-202603010900-system-trixie"], "patch", "17.8-202603010900-system-trixie",
     ("18.1-202603010900-system-trixie",)),
    ("1.2.0-kafka-4.3.1", ["1.2.1-kafka-4.3.1", "1.2.1-kafka-4.4.0"], "patch", "1.2.1-kafka-4.3.1", ()),
    ("26.3.33.24", ["26.3.34.1", "26.4.1.1"], "patch", "26.3.34.1", ("26.4.1.1",)),
    ("argo-cd-10.1.1", ["argo-cd-10.1.2", "argocd-image-updater-10.1.9", "argo-cd-10.1.3-rc.1"], "patch", "argo-cd-10.1.2", ()),
    ("RELEASE.2025-09-07T16-13-09Z", ["RELEASE.2025-10-01T00-00-00Z"], "patch", None, ()),
])
def test_only_newer_stable_releases_of_the_same_line_within_the_policy_are_candidates(pinned, offered, policy, newest, held):
    found = tags.candidates(pinned, offered, policy)
    assert (found.newest.tag if found.newest else None) == newest
    assert found.beyond_policy == held


def test_an_unknown_policy_is_an_error_naming_the_choices():
    with pytest.raises(ValueError, match="none, patch, minor"):
        tags.allowed("major", tags.parse("1.0.0"), tags.parse("2.0.0"))


CHART_LOCK = """charts:
  argo-cd:
    repository: https://argoproj.github.io/argo-helm
    chart: argo-cd
    version: 10.1.1
    source: 'https://github.com/argoproj/argo-helm/tree/argo-cd-10.1.1/charts/argo-cd'
    update: {policy}
    vendored:
      path: charts/argo-cd
      upstream: {{commit: af0a9310bacbaa4636018dfe22c801a6d33a5c43, git: github.com/argoproj/argo-helm, path: charts/argo-cd, tag: argo-cd-10.1.1}}
      packaging: [copy-license]
      dependencies:
        - {{name: redis-ha, version: 4.38.0, git: github.com/DandyDeveloper/charts, tag: redis-ha-4.38.0, commit: 2e2539a8960ead2c268f48bdde3b2cdf2b2f1ac8, path: charts/redis-ha, packaging: []}}
      digest: sha256:fcc77e98873bc61c88372764108063cad23e2fea4d3579e41d47e45273efa76d
images: {{}}
"""


@pytest.fixture(scope="module")
def chart_mirrors(tmp_path_factory):
    """A local Git repository standing in for argoproj/argo-helm, with release tags of several charts."""
    mirrors = tmp_path_factory.mktemp("mirrors")
    repo = mirrors / "argoproj+argo-helm" / "repo"
    repo.mkdir(parents=True)
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@example.test", "commit", "-q", "--allow-empty", "-m", "release")
    for tag in ("argo-cd-10.1.1", "argo-cd-10.1.2", "argo-cd-10.1.3", "argo-cd-10.2.0", "argo-cd-11.0.0",
                "argo-cd-10.1.4-rc.1", "argo-workflows-10.1.9"):
        git("tag", tag)
    return mirrors


@pytest.mark.parametrize("policy, tag", [("patch", "argo-cd-10.1.3"), ("minor", "argo-cd-10.2.0"), ("none", None)])
def test_newer_chart_releases_are_proposed_with_the_exact_vendoring_command(chart_mirrors, tmp_path, policy, tag):
    lock = tmp_path / "platform.lock.yaml"
    lock.write_text(CHART_LOCK.format(policy=policy))
    lines: list[str] = []
    proposals = chart_refresh.refresh_charts(lock, chart_mirrors, log=lines.append)
    if tag is None:
        assert proposals == [] and "beyond policy none" in lines[0]
        return
    (proposal,) = proposals
    version = tag.removeprefix("argo-cd-")
    assert proposal.command == (f"make vendor-chart NAME=argo-cd VERSION={version} GIT=github.com/argoproj/argo-helm "
                                f"TAG={tag} CHART_PATH=charts/argo-cd "
                                'DEPS="redis-ha=github.com/DandyDeveloper/charts@redis-ha-4.38.0:charts/redis-ha"')


def test_an_unreachable_chart_repository_is_reported_not_fatal(tmp_path):
    lock = tmp_path / "platform.lock.yaml"
    lock.write_text(CHART_LOCK.format(policy="patch").replace("github.com/argoproj/argo-helm,", f"{tmp_path}/nowhere,"))
    lines: list[str] = []
    assert chart_refresh.refresh_charts(lock, tmp_path, log=lines.append) == []
    assert lines[0].startswith("FAILED   argo-cd: git ls-remote --tags")


DIGEST = "sha256:0f3c0e8d4a7b5e96c2b1d3f8a9e7c6b5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9"


class _TokenRegistry(http.server.BaseHTTPRequestHandler):
    """Answers as Docker Hub does: 401 with a bearer challenge, a token endpoint, then the API with the token."""

    def do_GET(self):  # noqa: N802
        host = self.server.server_address
        if self.path.startswith("/token?"):
            assert "scope=repository%3Avendor%2Fapp%3Apull" in self.path and "service=test-registry" in self.path
            return self._answer(200, {"token": "t0ken"})
        if self.headers.get("Authorization") != "Bearer t0ken":
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://{host[0]}:{host[1]}/token",service="test-registry",'
                                                 'scope="repository:vendor/app:pull"')
            self.end_headers()
            return
        if self.path.startswith("/v2/vendor/app/tags/list"):
            return self._answer(200, {"name": "vendor/app", "tags": ["1.0.0", "1.0.1"]})
        if self.path == "/v2/vendor/app/manifests/1.0.1" and "application/vnd.oci.image.index.v1+json" in self.headers["Accept"]:
            return self._answer(200, {}, {"Docker-Content-Digest": DIGEST})
        self._answer(404, {})

    do_HEAD = do_GET

    def _answer(self, status: int, body: dict, headers: dict | None = None):
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_a_registry_asking_for_a_bearer_token_gets_one_from_its_realm():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenRegistry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        registry = Registry(f"127.0.0.1:{server.server_address[1]}", insecure=True)
        assert registry.tags("vendor/app") == ["1.0.0", "1.0.1"]
        assert registry.digest("vendor/app", "1.0.1") == DIGEST
        with pytest.raises(RegistryError, match="404"):
            registry.digest("vendor/app", "9.9.9")
    finally:
        server.shutdown()


def test_docker_hub_is_asked_at_its_api_host_over_https():
    assert Registry("docker.io").base == "https://registry-1.docker.io"
    assert Registry("ghcr.io").base == "https://ghcr.io"


def test_an_unknown_update_policy_makes_the_lock_invalid_naming_the_entry(tmp_path):
    from components import catalog
    document = catalog.read_document(CHART_LOCK.format(policy="major"))
    with pytest.raises(catalog.CatalogError, match=r"charts\.argo-cd: update must be one of none, patch, minor"):
        catalog.parse(document)
    assert catalog.parse(catalog.read_document(CHART_LOCK.format(policy="minor"))).charts["argo-cd"].update == "minor"


def test_chart_bound_operator_images_move_only_with_their_chart():
    from components import catalog
    images = catalog.load().images
    assert images["external-secrets"].update == "none" and images["istio-pilot"].update == "none"
    assert images["vault"].update == "patch"  # the default


def test_the_refresh_workflow_runs_weekly_and_pins_every_action():
    import re
    import yaml
    root = Path(__file__).resolve().parents[2]
    workflow = yaml.safe_load((root / ".github/workflows/refresh.yml").read_text())
    (schedule,) = workflow[True]["schedule"]  # YAML 1.1 reads the key `on` as True
    assert schedule["cron"] == "17 5 * * 1"
    steps = workflow["jobs"]["refresh"]["steps"]
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", s["uses"]) for s in steps if "uses" in s)
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "tools.ops.refresh images" in runs and "tools.ops.refresh charts" in runs and "gh pr create" in runs
    assert "Mondays 05:17 UTC" in (root / "docs/support.md").read_text(), "docs/support.md must state the workflow's schedule"


def test_every_image_of_the_real_lock_can_be_rewritten_in_place():
    import datetime as dt
    import hashlib
    from components import catalog
    text = catalog.LOCK_FILE.read_text()
    images = catalog.load().images
    outcomes = []
    for key, image in images.items():
        digest = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
        outcomes.append(refresh.Outcome(key=key, state=refresh.PROPOSED, pinned=f"{image.tag}@{image.digest}",
                                        proposal=refresh.Candidate(image.tag, digest, moved=True),
                                        source=f"registry {image.registry} 2026-11-29: tag {image.tag} moved"))
    proposed = catalog.parse(catalog.read_document(lockfile.propose_lock(text, outcomes, dt.date(2026, 11, 29))))
    assert all(proposed.images[k].digest == "sha256:" + hashlib.sha256(k.encode()).hexdigest() for k in images)
    assert proposed.charts == catalog.load().charts and proposed.images["vault"].waivers == images["vault"].waivers
