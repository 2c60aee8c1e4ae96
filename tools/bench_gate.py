"""Time the promotion gate over a synthetic plan: ``python -m tools.bench_gate --workloads 10000``.

The plan holds N hardened Deployments spread over namespaces of 100, each namespace with its
Namespace object and default-deny NetworkPolicy, and one Helm chart per namespace deployed from
the repository's vendored ``charts/vault`` (so pinned-charts checks path, version and the folder's
digest), all under prod-like settings (mandatory, allow-list waivers, platform registry only). The
gate judges a chart by the objects it renders; the Deployments stand for those. The catalog is a
one-image, one-chart file written to a temporary directory, so the figure measures the gate, not
the size of platform.lock.yaml. Prints the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from policies.catalog import REPO_ROOT, content_digest
from tools.gate import run_gate

REGISTRY = "registry.bench.test/mirror"
DIGEST = "sha256:" + "ab" * 32
IMAGE = f"{REGISTRY}/bench/agent:1.0.0@{DIGEST}"
PER_NAMESPACE = 100
CHART_PATH = "charts/vault"
"""A chart vendored in this repository: pinned-charts hashes its files like any deployed chart's."""


def _chart_version() -> str:
    return str(yaml.safe_load((REPO_ROOT / CHART_PATH / "Chart.yaml").read_text(encoding="utf-8"))["version"])


def write_catalog(directory: Path) -> Path:
    path = directory / "platform.lock.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "charts": {
                    "vault": {
                        "repository": "https://helm.releases.hashicorp.com",
                        "chart": "vault",
                        "version": _chart_version(),
                        "source": "bench",
                        "vendored": {"path": CHART_PATH, "digest": content_digest(REPO_ROOT / CHART_PATH)},
                    }
                },
                "images": {
                    "agent": {
                        "registry": "docker.io",
                        "repository": "bench/agent",
                        "tag": "1.0.0",
                        "digest": DIGEST,
                        "source": "bench",
                        "signer": {"kind": "platform"},
                    }
                },
            }
        )
    )
    return path


def _resource(type_: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:bench::somaagenthub::{type_}::{name}",
        "type": type_,
        "name": name,
        "parent": None,
        "dependencies": [],
        "custom": True,
        "remote": False,
        "inputs": inputs,
    }


def _workload(name: str, namespace: str) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": IMAGE,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "env": [
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        ],
        "ports": [{"containerPort": 8080, "name": "http"}],
    }
    return _resource(
        "kubernetes:apps/v1:Deployment",
        f"{namespace}-{name}",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": name}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": name}},
                    "spec": {
                        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                        "automountServiceAccountToken": False,
                        "containers": [container],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        },
    )


def synthetic_plan(workloads: int) -> dict[str, Any]:
    resources: list[dict[str, Any]] = []
    chart_version = _chart_version()
    for first in range(0, workloads, PER_NAMESPACE):
        namespace = f"bench-{first // PER_NAMESPACE}"
        resources.append(
            _resource(
                "kubernetes:core/v1:Namespace",
                namespace,
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
                },
            )
        )
        resources.append(
            _resource(
                "kubernetes:networking.k8s.io/v1:NetworkPolicy",
                f"{namespace}-deny",
                {
                    "apiVersion": "networking.k8s.io/v1",
                    "kind": "NetworkPolicy",
                    "metadata": {"name": "default-deny", "namespace": namespace},
                    "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
                },
            )
        )
        resources.append(
            _resource(
                "kubernetes:helm.sh/v4:Chart",
                f"{namespace}-chart",
                {
                    "chart": f"./{CHART_PATH}",
                    "version": chart_version,
                    "namespace": namespace,
                    "values": {"injector": {"enabled": False}},
                },
            )
        )
        resources.extend(
            _workload(f"agent-{i}", namespace) for i in range(first, min(first + PER_NAMESPACE, workloads))
        )
    return {"stack": "bench", "settings": {"registry": REGISTRY}, "resources": resources}


def bench_config(catalog: Path) -> dict[str, Any]:
    return {
        "all": "mandatory",
        "digest-pinned-images": {"catalogPath": str(catalog), "allowedRegistries": [REGISTRY]},
        "pinned-charts": {"catalogPath": str(catalog)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_gate", description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        config = bench_config(write_catalog(Path(directory)))
        plan = synthetic_plan(args.workloads)
        timings = []
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            report = run_gate(plan, config)
            timings.append(time.perf_counter() - start)
    best = min(timings)
    count = len(plan["resources"])
    print(f"gate over {args.workloads} workloads ({count} resources), best of {len(timings)}: {best:.2f} s")
    print(
        f"{count / best:,.0f} resources/s, {args.workloads / best:,.0f} workloads/s; "
        f"{len(report.lines)} report lines, gate {'PASSED' if report.passed else 'FAILED'}"
    )
    return 0 if report.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
