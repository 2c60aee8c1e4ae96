"""A task on a schedule (backups, snapshots) with the same hardening as the kit Job.

``CronJob(CronJobArgs(name=..., schedule="15 3 * * *", image="catalog-key", command=(...), ...), ctx)``
gives its own ServiceAccount without token automount, a CronJob whose pods are the kit Job's pods
(non-root, read-only root filesystem, no capabilities, requests and limits, scripts from a
read-only ConfigMap, credentials only as ``secretKeyRef``), and one egress NetworkPolicy per
destination. Runs never overlap (``Forbid``), the schedule is read in UTC, and a missed start is
given up after ``starting_deadline_seconds`` rather than run late. kube-state-metrics reports the
last successful run, which is what a backup age alert watches
(:func:`components.core.backup_watch.cronjob_watch`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.kit import network
from components.kit.context import KitContext
from components.kit.job import Job, JobArgs
from components.kit.labels import recommended, selector, waiver_annotations

SCHEDULE_FIELDS = 5
TIME_ZONE = "Etc/UTC"


@dataclass(frozen=True)
class CronJobArgs(JobArgs):
    schedule: str = ""
    """Five-field cron (minute hour day-of-month month day-of-week), in UTC."""
    starting_deadline_seconds: int = 3600
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.schedule.split()) != SCHEDULE_FIELDS:
            raise ValueError(f"cronjob {self.name}: schedule {self.schedule!r} must have five cron fields (minute to day-of-week)")


class CronJob(pulumi.ComponentResource):
    """See the module docstring."""

    def __init__(self, args: CronJobArgs, ctx: KitContext, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:kit:CronJob", f"{args.namespace}-{args.name}", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = ctx.catalog.image(args.image)
        labels = recommended(args.name, args.component, image.tag)
        match = selector(args.name)
        prefix = f"{args.namespace}-{args.name}"
        annotations = waiver_annotations(dict(args.opt_out))
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
        self.cronjob = k8s.batch.v1.CronJob(
            prefix,
            metadata={"name": args.name, "namespace": args.namespace, "labels": labels, "annotations": annotations},
            spec={
                "schedule": args.schedule,
                "timeZone": TIME_ZONE,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": args.starting_deadline_seconds,
                "successfulJobsHistoryLimit": args.successful_jobs_history_limit,
                "failedJobsHistoryLimit": args.failed_jobs_history_limit,
                "jobTemplate": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "backoffLimit": args.backoff_limit,
                        "activeDeadlineSeconds": args.active_deadline_seconds,
                        "template": {
                            "metadata": {"labels": {**labels, **match}, "annotations": annotations},
                            "spec": Job._pod_spec(args, image.reference),
                        },
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[r for r in (self.service_account, self.files) if r is not None]),
        )
        self.network_policies = [
            network.allow_egress(f"{args.name}-egress-{i}", args.namespace, match, [flow.to], list(flow.ports), child)
            for i, flow in enumerate(args.egress)
        ]
        self.register_outputs({"name": args.name, "schedule": args.schedule})


__all__ = ["CronJob", "CronJobArgs"]
