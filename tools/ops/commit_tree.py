"""A release's source: this repository at one commit, checked out beside the working tree.

Promotion and rollback judge exactly what a stack will deploy, which is the program, the lock, the charts,
the stack file and the policy pack *at the release's commit*, never the working tree. ``checkout`` makes a
detached ``git worktree`` of that commit; the render, the gate and the mirror check run there, as that
commit's own code (``python -m tools.render`` etc. with the tree as working directory). Nothing in it is
changed, and it is removed afterwards.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from components import catalog, settings
from tools.ops.release import release_digests, release_id

_GATE_SUMMARY = """
import json, sys
from pathlib import Path
from tools.gate import load_plan, run_gate
from policies.config import load_config_file, resolve_settings, stack_config_path
from policies.rules import RULES
stack, plan = sys.argv[1], Path(sys.argv[2])
config = load_config_file(stack_config_path(stack))
report = run_gate(load_plan(plan), config)
levels = {"mandatory": 0, "advisory": 0, "waived": 0}
for line in report.lines:
    levels[line.level] += 1
rules = sorted(name for name, rule in resolve_settings(config, RULES).items() if rule.enabled)
print(json.dumps({"stack": stack, "resources": report.resource_count, "rules": rules, "findings": levels,
                  "result": "passed" if report.passed else "failed",
                  "blocking": [f"{l.rule} {l.urn}: {l.message}" for l in report.blocking]}))
"""


class TreeError(RuntimeError):
    """The commit cannot be checked out, rendered, gated or checked: the message says which step and why."""


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise TreeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def head_commit(root: Path) -> str:
    """HEAD's commit, refused when the working tree differs from it (what is promoted must be committed)."""
    dirty = git(root, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        raise TreeError("the working tree has uncommitted changes; a promotion from dev takes HEAD as committed:\n" + dirty)
    return git(root, "rev-parse", "HEAD")


@dataclass(frozen=True)
class GateSummary:
    """What the record keeps of a gate report: the rules that ran, the findings per level, the verdict."""

    stack: str
    resources: int
    rules: tuple[str, ...]
    findings: dict[str, int]
    result: str
    blocking: tuple[str, ...] = ()

    def as_record(self) -> dict:
        return {"stack": self.stack, "resources": self.resources, "rules": list(self.rules),
                "findings": dict(self.findings), "result": self.result}


@dataclass(frozen=True)
class CommitTree:
    """The repository at ``commit``, checked out at ``path``; ``python`` runs its tools (the shared venv)."""

    path: Path
    commit: str
    python: str = sys.executable

    def lock(self) -> catalog.Catalog:
        return catalog.load(self.path / "platform.lock.yaml")

    def release(self) -> tuple[dict[str, str], str]:
        digests = release_digests(self.lock())
        return digests, release_id(digests)

    def stack_file(self, stack: str) -> Path:
        path = self.path / f"Pulumi.{stack}.yaml"
        if not path.is_file():
            raise TreeError(f"commit {self.commit[:12]} has no Pulumi.{stack}.yaml: stack {stack} did not exist there")
        return path

    def settings_hash(self, stack: str) -> str:
        return "sha256:" + hashlib.sha256(self.stack_file(stack).read_bytes()).hexdigest()

    def admission(self, stack: str) -> tuple[str, settings.SignatureSettings | None]:
        """The registry the stack pulls from and what its admission verifies signatures against, as the
        commit's stack file sets them."""
        from tools.render import stack_config

        try:
            parsed = settings.parse(stack_config(stack, self.stack_file(stack)), stack)
        except settings.SettingsError as error:
            raise TreeError(f"Pulumi.{stack}.yaml at {self.commit[:12]}: {error}") from None
        return parsed.registry, parsed.mesh.signatures

    def _run(self, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(self.path)}
        return subprocess.run([self.python, *args], cwd=self.path, capture_output=True, text=True, timeout=timeout, env=env)

    def render(self, stack: str, out: Path) -> Path:
        """``python -m tools.render`` of the commit; returns the plan's path."""
        self.stack_file(stack)
        done = self._run("-m", "tools.render", "--stack", stack, "--out", str(out))
        if done.returncode != 0:
            raise TreeError(f"render {stack} at {self.commit[:12]} failed: {(done.stderr or done.stdout).strip()[-3000:]}")
        return out / "plan.json"

    def gate(self, stack: str, plan: Path) -> GateSummary:
        """The commit's own gate and policy config over the plan (mandatory rules block)."""
        done = self._run("-c", _GATE_SUMMARY, stack, str(plan))
        if done.returncode != 0:
            raise TreeError(f"gate {stack} at {self.commit[:12]} could not judge: {done.stderr.strip()[-3000:]}")
        raw = json.loads(done.stdout.strip().splitlines()[-1])
        return GateSummary(stack=raw["stack"], resources=raw["resources"], rules=tuple(raw["rules"] or ()),
                           findings=raw["findings"], result=raw["result"], blocking=tuple(raw["blocking"]))

    def mirror_check(self, stack: str, build: Path, report: Path) -> list[str]:
        """``python -m tools.mirror check`` (make mirror-check) at the commit: empty when every image is mirrored,
        scanned and signed with the key the stack's admission trusts; otherwise its refusals."""
        done = self._run("-m", "tools.mirror", "check", "--stack", stack, "--build", str(build),
                         "--report", str(report))
        if done.returncode == 0:
            return []
        lines = [line.removeprefix("REFUSED ") for line in done.stdout.splitlines() if line.startswith("REFUSED ")]
        return lines or [(done.stderr or done.stdout).strip()[-2000:] or f"mirror check exited {done.returncode}"]

    def migration_steps(self) -> dict[str, list[dict]]:
        """Every app's schema steps at the commit (``python -m tools.ops.migrations --list``)."""
        done = self._run("-m", "tools.ops.migrations", "--list")
        if done.returncode != 0:
            raise TreeError(f"listing the schema migrations at {self.commit[:12]} failed: {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout)

    def migration_check(self, log_root: Path) -> tuple[str, list[str]]:
        """``python -m tools.ops.migrations`` at the commit against ``log_root``'s promotion log: (its summary,
        its refusals): every schema step expand-only, or a contract step whose safe release ran in prod."""
        done = self._run("-m", "tools.ops.migrations", "--log-root", str(log_root))
        lines = done.stdout.strip().splitlines()
        refused = [line.removeprefix("REFUSED ") for line in lines if line.startswith("REFUSED ")]
        if done.returncode != 0 and not refused:
            refused = [(done.stderr or done.stdout).strip()[-2000:] or f"migration check exited {done.returncode}"]
        return (lines[-1] if lines else ""), refused


@contextlib.contextmanager
def checkout(root: Path, commit: str) -> Iterator[CommitTree]:
    """A detached worktree of ``commit`` (removed on exit), with the working tree's virtualenv beside it."""
    full = git(root, "rev-parse", "--verify", f"{commit}^{{commit}}")
    scratch = Path(tempfile.mkdtemp(prefix=f"soma-release-{full[:12]}-"))
    tree = scratch / "tree"
    git(root, "worktree", "add", "--detach", str(tree), full)
    try:
        yield CommitTree(path=tree, commit=full)
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], capture_output=True)
        subprocess.run(["rm", "-rf", str(scratch)], capture_output=True)
