"""A one-shot task (schema migration, bucket setup) with the same hardening as a workload.

``Job(JobArgs(name=..., image="catalog-key", command=(...), ...), ctx)`` gives its own
ServiceAccount without token automount, a non-root, read-only Job whose pod template carries a
checksum of its inputs (so a changed script or config replaces the Job and it runs again), its
script files in a ConfigMap mounted read-only, and one egress NetworkPolicy per destination.
A Job exposes nothing, so it gets no Service, no ingress and no metrics scraping.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.kit import network
from components.kit.context import KitContext
from components.kit.labels import recommended, selector, waiver_annotations
from components.kit.containers import SecretEnv, environment, writable_scratch
from components.kit.security import NON_ROOT_UID, container_security_context, pod_security_context, resource_requirements
from components.kit.workload import Egress
from components.settings import Resources

CHECKSUM_ANNOTATION = "somaagenthub.io/inputs-checksum"


@dataclass(frozen=True)
class ScriptFiles:
    """Scripts and non-secret configuration, shipped in a ConfigMap and mounted read-only at ``path``."""

    path: str
    files: Mapping[str, str]


@dataclass(frozen=True)
class JobArgs:
    name: str
    namespace: str
    component: str
    image: str
    command: tuple[str, ...]
    resources: Resources
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[SecretEnv, ...] = ()
    files: ScriptFiles | None = None
    writable_paths: tuple[str, ...] = ("/tmp",)
    egress: tuple[Egress, ...] = ()
    backoff_limit: int = 6
    active_deadline_seconds: int = 1800
    opt_out: Mapping[str, str] = field(default_factory=dict)
    run_as_user: int = NON_ROOT_UID

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError(f"job {self.name}: a job needs a command")
        for item in self.secret_env:
            if item.env in self.env:
                raise ValueError(f"job {self.name}: env {item.env} is set both literally and from a Secret")


class Job(pulumi.ComponentResource):
    """See the module docstring; ``checksum_of`` is any text whose change must rerun the job."""

    def __init__(self, args: JobArgs, ctx: KitContext, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:kit:Job", f"{args.namespace}-{args.name}", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = ctx.catalog.image(args.image)
        labels = recommended(args.name, args.component, image.tag)
        match = selector(args.name)
        prefix = f"{args.namespace}-{args.name}"
        self.service_account = k8s.core.v1.ServiceAccount(
            prefix, metadata={"name": args.name, "namespace": args.namespace, "labels": labels},
            automount_service_account_token=False, opts=child,
        )
        self.files = None
        if args.files is not None:
            self.files = k8s.core.v1.ConfigMap(
                prefix,
                metadata={"name": args.name, "namespace": args.namespace, "labels": labels},
                data=dict(args.files.files),
                opts=child,
            )
        annotations = {**waiver_annotations(dict(args.opt_out)), CHECKSUM_ANNOTATION: self.checksum(args, image.reference)}
        self.job = k8s.batch.v1.Job(
            prefix,
            metadata={"name": args.name, "namespace": args.namespace, "labels": labels, "annotations": waiver_annotations(dict(args.opt_out))},
            spec={
                "backoffLimit": args.backoff_limit,
                "activeDeadlineSeconds": args.active_deadline_seconds,
                "template": {"metadata": {"labels": {**labels, **match}, "annotations": annotations}, "spec": self._pod_spec(args, image.reference)},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[r for r in (self.service_account, self.files) if r is not None]),
        )
        self.network_policies = [
            network.allow_egress(f"{args.name}-egress-{i}", args.namespace, match, [flow.to], list(flow.ports), child)
            for i, flow in enumerate(args.egress)
        ]
        self.register_outputs({"name": args.name})

    @staticmethod
    def checksum(args: JobArgs, image: str) -> str:
        """The pod template is immutable: a new checksum makes Pulumi replace the Job, which reruns it."""
        files = dict(args.files.files) if args.files else {}
        payload = json.dumps({"image": image, "command": args.command, "args": args.args, "env": dict(args.env), "files": files}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @staticmethod
    def _pod_spec(args: JobArgs, image: str) -> dict:
        env = environment(args.env, args.secret_env)
        mounts, volumes = writable_scratch(args.writable_paths)
        if args.files:
            mounts.append({"name": "files", "mountPath": args.files.path, "readOnly": True})
            volumes.append({"name": "files", "configMap": {"name": args.name, "defaultMode": 0o555}})
        container = {
            "name": args.name,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": list(args.command),
            "args": list(args.args),
            "env": env,
            "resources": resource_requirements(args.resources),
            "securityContext": container_security_context(args.opt_out, args.run_as_user),
            "volumeMounts": mounts,
        }
        return {
            "serviceAccountName": args.name,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Never",
            "securityContext": pod_security_context(args.run_as_user),
            "containers": [container],
            "volumes": volumes,
        }
