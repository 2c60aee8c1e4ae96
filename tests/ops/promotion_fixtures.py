"""A repository, a log key and a stand-in for a commit's tree, for the promotion tests.

The stand-in (:class:`FakeTree`) answers what tools/ops/commit_tree.CommitTree answers after a real render
(two minutes a stack): the plan's images, the gate's summary, the mirror check's refusals, the stack's
admission settings and the lock. Everything else the promotion does runs for real: git, the log, cosign,
the results files, the image verification when a test passes the real ``verify``.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from components import catalog
from components.settings import PlatformSigningKey, SignatureSettings
from tools.images.release import ReleaseError
from tools.ops.commit_tree import GateSummary
from tools.ops.promote import Options
from tools.ops.release import release_digests, release_id

NOW = datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc)
PASSED = GateSummary(stack="staging", resources=812, rules=("image-digest", "non-root"),
                     findings={"mandatory": 0, "advisory": 3, "waived": 2}, result="passed")
FAILED = replace(PASSED, findings={"mandatory": 1, "advisory": 0, "waived": 0}, result="failed",
                 blocking=("non-root kubernetes:apps/v1:Deployment::tools: runs as root",))


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.test",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.test"})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def repository(root: Path, public_key: str) -> Path:
    """A git repository with one commit, the log's public key in place."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    (root / "promotions").mkdir()
    (root / "promotions" / "log.pub").write_text(Path(public_key).read_text())
    (root / "README").write_text("release 1\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def commit(root: Path, message: str) -> str:
    (root / "README").write_text(message + "\n")
    git(root, "add", "README")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


def signatures(public_key_pem: str) -> SignatureSettings:
    return SignatureSettings(verify_by="platformKey", mode="enforce", no_match_policy="deny", failure_policy="Fail", replicas=1,
                             platform_key=PlatformSigningKey(public_key_pem=public_key_pem))


@dataclass
class FakeTree:
    """The outcomes one commit's tree gives; ``images`` are the rendered ``name@digest`` references."""

    lock_: catalog.Catalog
    images: list[str]
    registry: str
    signature_settings: SignatureSettings | None
    gates: dict[str, GateSummary] = field(default_factory=dict)
    mirror_refusals: list[str] = field(default_factory=list)
    release_override: str | None = None
    migration_refusals: list[str] = field(default_factory=list)
    steps_by_commit: dict[str, dict] = field(default_factory=dict)
    """The apps' schema steps (``python -m tools.ops.migrations --list``) per commit; none by default."""
    commit: str = ""
    path: Path = Path("/nonexistent")
    rendered: list[str] = field(default_factory=list)

    def lock(self) -> catalog.Catalog:
        return self.lock_

    def release(self) -> tuple[dict[str, str], str]:
        digests = release_digests(self.lock_)
        return digests, self.release_override or release_id(digests)

    def settings_hash(self, stack: str) -> str:
        return "sha256:" + f"{stack}-settings".encode().hex().ljust(64, "0")[:64]

    def render(self, stack: str, out: Path) -> Path:
        self.rendered.append(stack)
        (out / "manifests").mkdir(parents=True, exist_ok=True)
        plan = out / "plan.json"
        plan.write_text(json.dumps({"stack": stack, "resources": [{"inputs": {"image": i}} for i in self.images]}))
        return plan

    def gate(self, stack: str, plan: Path) -> GateSummary:
        return self.gates.get(stack, replace(PASSED, stack=stack))

    def mirror_check(self, stack: str, build: Path, report: Path) -> list[str]:
        return list(self.mirror_refusals)

    def migration_steps(self) -> dict[str, list[dict]]:
        return self.steps_by_commit.get(self.commit, {})

    def migration_check(self, log_root: Path) -> tuple[str, list[str]]:
        return "3 migration step(s) in identity, orchestrator: one release back stays safe", list(self.migration_refusals)

    def admission(self, stack: str):
        return self.registry, self.signature_settings


def fake_checkout(tree: FakeTree, seen: list[str] | None = None):
    """``Options.checkout`` handing out ``tree`` for whatever commit is asked (recorded in ``seen``)."""

    @contextlib.contextmanager
    def checkout(root: Path, commit_id: str):
        if seen is not None:
            seen.append(commit_id)
        yield replace(tree, commit=commit_id)

    return checkout


def verify_all_but(*unsigned: str):
    def verify(image: str, trust) -> None:
        if any(u in image for u in unsigned):
            raise ReleaseError(f"{image}: verify signature failed: Error: no signatures found")
    return verify


def options(root: Path, key: str, tree: FakeTree, *, seen: list[str] | None = None, verify=verify_all_but(),
            **changes) -> Options:
    base = Options(root=root, key=key, who="release-manager@example.test", now=NOW,
                   mirror_report=root / "build/mirror/report.json", checkout=fake_checkout(tree, seen), verify=verify)
    return replace(base, **changes)
