"""One-shot and scheduled tasks (schema migration, bucket setup, snapshots) with the same hardening as a workload.

``Job(JobArgs(name=..., image="catalog-key", command=(...), ...), ctx)`` gives its own
ServiceAccount without token automount, a non-root, read-only Job whose pod template carries a
checksum of its inputs (so a changed script or config replaces the Job and it runs again), its
script files in a ConfigMap mounted read-only, and one egress NetworkPolicy per destination.
``CronJob(CronJobArgs(job=JobArgs(...), schedule="0 * * * *"), ctx)`` runs the same pod on a
schedule, one run at a time. A job exposes nothing, so it gets no Service, no ingress and no
metrics scraping.

A job whose work has several stages in different images lists the earlier ones as ``steps``
(init containers, run in order before the main container); they hand their results on through
``shared_dirs``. Inputs are given to the container that needs them and to no other: a Secret's
keys as environment (``secret_env``) or as files (``secret_files``, chosen keys only), and a
short-lived token of the job's own ServiceAccount for one audience (``token``), the only way a
kit pod ever holds a ServiceAccount token.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.kit import network
from components.kit.context import KitContext
from components.kit.labels import recommended, selector, waiver_annotations
from components.kit.containers import (  # noqa: F401 - SecretFile and ServiceAccountToken are part of the job API
    MIN_TOKEN_EXPIRATION_SECONDS, SecretEnv, SecretFile, ServiceAccountToken, environment, writable_scratch,
)
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
class Step:
    """A stage that runs to completion before the job's main container (an init container).

    It shares the job's script files, scratch and ``shared_dirs``; its own inputs reach it alone.
    """

    name: str
    image: str
    command: tuple[str, ...]
    resources: Resources
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: tuple[SecretEnv, ...] = ()
    secret_files: tuple[SecretFile, ...] = ()
    token: ServiceAccountToken | None = None

    def __post_init__(self) -> None:
        _check_container(f"step {self.name}", self.command, self.env, self.secret_env)


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
    steps: tuple[Step, ...] = ()
    """Earlier stages, run in order before the main container (init containers)."""
    shared_dirs: Mapping[str, str] = field(default_factory=dict)
    """Folders every container mounts read-write (path -> size limit): how steps hand work on."""
    secret_files: tuple[SecretFile, ...] = ()
    token: ServiceAccountToken | None = None
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    """Extra pod labels a destination admits its clients by (``somaagenthub.io/minio-client``)."""

    def __post_init__(self) -> None:
        _check_container(f"job {self.name}", self.command, self.env, self.secret_env)
        names = [self.name, *(s.name for s in self.steps)]
        if len(set(names)) != len(names):
            raise ValueError(f"job {self.name}: container names must differ, got {names}")
        reserved = set(selector(self.name))
        if reserved & set(self.pod_labels):
            raise ValueError(f"job {self.name}: pod_labels may not set the selector labels {sorted(reserved & set(self.pod_labels))}")


def _check_container(who: str, command: tuple[str, ...], env: Mapping[str, str], secret_env: tuple[SecretEnv, ...]) -> None:
    if not command:
        raise ValueError(f"{who}: a job needs a command")
    for item in secret_env:
        if item.env in env:
            raise ValueError(f"{who}: env {item.env} is set both literally and from a Secret")


class Job(pulumi.ComponentResource):
    """See the module docstring; ``checksum_of`` is any text whose change must rerun the job."""

    def __init__(self, args: JobArgs, ctx: KitContext, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:kit:Job", f"{args.namespace}-{args.name}", None, opts)
        parts = _JobParts(args, ctx, self, after=_waits(opts))
        self.service_account, self.files = parts.service_account, parts.files
        template = parts.pod_template(extra_annotations={CHECKSUM_ANNOTATION: self.checksum(args, parts.image.reference)})
        self.job = k8s.batch.v1.Job(
            parts.prefix,
            metadata=parts.metadata,
            spec={"backoffLimit": args.backoff_limit, "activeDeadlineSeconds": args.active_deadline_seconds, "template": template},
            opts=parts.after_inputs,
        )
        self.network_policies = parts.network_policies()
        self.register_outputs({"name": args.name})

    @staticmethod
    def checksum(args: JobArgs, image: str) -> str:
        """The pod template is immutable: a new checksum makes Pulumi replace the Job, which reruns it."""
        files = dict(args.files.files) if args.files else {}
        inputs: dict = {"image": image, "command": args.command, "args": args.args, "env": dict(args.env), "files": files}
        if args.steps:
            inputs["steps"] = [{"name": s.name, "image": s.image, "command": s.command, "args": s.args, "env": dict(s.env)} for s in args.steps]
        payload = json.dumps(inputs, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CronJobArgs:
    """``job`` run on ``schedule`` (five-field cron, read in ``time_zone``), never two runs at once.

    ``concurrency_policy`` ``Forbid`` skips a run while the previous one is still going (a slow
    run is not killed); ``starting_deadline_seconds`` is how late a missed run may still start.
    The history limits keep the last runs' pods for ``kubectl logs``.
    """

    job: JobArgs
    schedule: str
    time_zone: str = "Etc/UTC"
    concurrency_policy: Literal["Forbid", "Replace"] = "Forbid"
    starting_deadline_seconds: int = 3600
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 3

    def __post_init__(self) -> None:
        if len(self.schedule.split()) != 5:
            raise ValueError(f"cron job {self.job.name}: schedule {self.schedule!r} needs five fields (minute hour day month weekday)")


class CronJob(pulumi.ComponentResource):
    """See the module docstring. The pod template carries no checksum: a CronJob's template may
    change in place, and the next scheduled run uses the new one."""

    def __init__(self, args: CronJobArgs, ctx: KitContext, opts: pulumi.ResourceOptions | None = None):
        job = args.job
        super().__init__("somaagenthub:kit:CronJob", f"{job.namespace}-{job.name}", None, opts)
        parts = _JobParts(job, ctx, self, after=_waits(opts))
        self.service_account, self.files = parts.service_account, parts.files
        self.cron_job = k8s.batch.v1.CronJob(
            parts.prefix,
            metadata=parts.metadata,
            spec={
                "schedule": args.schedule,
                "timeZone": args.time_zone,
                "concurrencyPolicy": args.concurrency_policy,
                "startingDeadlineSeconds": args.starting_deadline_seconds,
                "successfulJobsHistoryLimit": args.successful_jobs_history_limit,
                "failedJobsHistoryLimit": args.failed_jobs_history_limit,
                "jobTemplate": {
                    "metadata": {"labels": parts.labels},
                    "spec": {"backoffLimit": job.backoff_limit, "activeDeadlineSeconds": job.active_deadline_seconds,
                             "template": parts.pod_template()},
                },
            },
            opts=parts.after_inputs,
        )
        self.network_policies = parts.network_policies()
        self.register_outputs({"name": job.name, "schedule": args.schedule})


def _waits(opts: pulumi.ResourceOptions | None) -> list[pulumi.Resource]:
    """What the caller made the job wait for (``depends_on`` of its options): a component's children do not
    inherit it, so the Job (or CronJob) object itself is made to wait for it too, or it would start first."""
    depends_on = opts.depends_on if opts is not None else None
    if depends_on is None:
        return []
    return list(depends_on) if isinstance(depends_on, (list, tuple)) else [depends_on]


class _JobParts:
    """What a Job and a CronJob share: the ServiceAccount, the script ConfigMap, the pod, the egress."""

    def __init__(self, args: JobArgs, ctx: KitContext, parent: pulumi.ComponentResource, after: list[pulumi.Resource] = ()):
        self.args = args
        self.child = pulumi.ResourceOptions(parent=parent)
        self.image = ctx.catalog.image(args.image)
        self._image_of: Callable[[str], str] = lambda key: ctx.catalog.image(key).reference
        self.labels = recommended(args.name, args.component, self.image.tag)
        self.match = selector(args.name)
        self.prefix = f"{args.namespace}-{args.name}"
        self.metadata = {"name": args.name, "namespace": args.namespace, "labels": self.labels,
                         "annotations": waiver_annotations(dict(args.opt_out))}
        self.service_account = k8s.core.v1.ServiceAccount(
            self.prefix, metadata={"name": args.name, "namespace": args.namespace, "labels": self.labels},
            automount_service_account_token=False, opts=self.child,
        )
        self.files = None
        if args.files is not None:
            self.files = k8s.core.v1.ConfigMap(
                self.prefix,
                metadata={"name": args.name, "namespace": args.namespace, "labels": self.labels},
                data=dict(args.files.files),
                opts=self.child,
            )
        # and the Secrets the pod reads: it must not start before External Secrets has written them
        self.after_inputs = ctx.after_secrets(args.namespace, pod_spec(args, self._image_of), pulumi.ResourceOptions(
            parent=parent, depends_on=[*after, *(r for r in (self.service_account, self.files) if r is not None)]))

    def pod_template(self, extra_annotations: Mapping[str, str] | None = None) -> dict:
        annotations = {**waiver_annotations(dict(self.args.opt_out)), **(extra_annotations or {})}
        labels = {**self.labels, **dict(self.args.pod_labels), **self.match}
        return {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec(self.args, self._image_of)}

    def network_policies(self) -> list[pulumi.Resource]:
        return [
            network.allow_egress(f"{self.args.name}-egress-{i}", self.args.namespace, self.match, [flow.to], list(flow.ports), self.child)
            for i, flow in enumerate(self.args.egress)
        ]


def pod_spec(args: JobArgs, image_of: Callable[[str], str]) -> dict:
    """The job's pod: steps as init containers, then the main container, each hardened alike.

    ``image_of`` turns a catalog key into the pinned reference for the stack's registry.
    """
    mounts, volumes = writable_scratch(args.writable_paths)
    if args.files:
        mounts.append({"name": "files", "mountPath": args.files.path, "readOnly": True})
        volumes.append({"name": "files", "configMap": {"name": args.name, "defaultMode": 0o555}})
    for i, (path, size) in enumerate(sorted(args.shared_dirs.items())):
        mounts.append({"name": f"shared-{i}", "mountPath": path})
        volumes.append({"name": f"shared-{i}", "emptyDir": {"sizeLimit": size}})
    own_volumes: dict[object, str] = {}

    def inputs(secret_files: tuple[SecretFile, ...], token: ServiceAccountToken | None) -> list[dict]:
        """The volumes of one container's own inputs (declared once per pod, mounted where asked)."""
        found = []
        for item in secret_files:
            if item not in own_volumes:
                own_volumes[item] = f"secret-{sum(isinstance(k, SecretFile) for k in own_volumes)}"
                volumes.append({"name": own_volumes[item], "secret": {
                    "secretName": item.secret, "defaultMode": 0o444, "items": [{"key": k, "path": k} for k in item.keys]}})
            found.append({"name": own_volumes[item], "mountPath": item.path, "readOnly": True})
        if token is not None:
            if token not in own_volumes:
                own_volumes[token] = f"token-{sum(isinstance(k, ServiceAccountToken) for k in own_volumes)}"
                volumes.append({"name": own_volumes[token], "projected": {"sources": [{"serviceAccountToken": {
                    "audience": token.audience, "expirationSeconds": token.expiration_seconds, "path": "token"}}]}})
            found.append({"name": own_volumes[token], "mountPath": token.path, "readOnly": True})
        return found

    def container(name: str, image: str, command, arguments, env, secret_env, resources, own: list[dict]) -> dict:
        return {
            "name": name,
            "image": image_of(image),
            "imagePullPolicy": "IfNotPresent",
            "command": list(command),
            "args": list(arguments),
            "env": environment(env, secret_env),
            "resources": resource_requirements(resources),
            "securityContext": container_security_context(args.opt_out, args.run_as_user),
            "volumeMounts": [*mounts, *own],
        }

    steps = [container(s.name, s.image, s.command, s.args, s.env, s.secret_env, s.resources, inputs(s.secret_files, s.token))
             for s in args.steps]
    main = container(args.name, args.image, args.command, args.args, args.env, args.secret_env, args.resources,
                     inputs(args.secret_files, args.token))
    spec = {
        "serviceAccountName": args.name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "securityContext": pod_security_context(args.run_as_user),
        "containers": [main],
        "volumes": volumes,
    }
    if steps:
        spec["initContainers"] = steps
    return spec
