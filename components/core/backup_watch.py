"""Every backup stream is watched the same way: an alert when its newest backup is too old.

A backup nobody checks is a backup nobody has. Each stream of Core (PostgreSQL, ClickHouse,
Qdrant, Vault Raft) declares a :class:`BackupWatch`: a PromQL expression giving the Unix time of
its newest *successful* backup. :func:`rule_spec` turns the list into one PrometheusRule whose
threshold is the stack's ``core.backups.maxAgeHours``, so the age that pages is a setting, not a
number buried in a rule file. A stream whose expression returns nothing (never succeeded, or its
metric vanished) pages too, after the same age.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi

from components.kit import KitContext, custom_resource, recommended

RULE_NAME = "soma-backup-age"
RUNBOOK = "docs/runbooks/observability.md#backuptooold"


@dataclass(frozen=True)
class BackupWatch:
    """One backup stream: ``newest`` is PromQL for the Unix time of its newest successful backup."""

    stream: str
    what: str
    newest: str

    def __post_init__(self) -> None:
        if not self.stream or not self.stream.replace("-", "").isalnum():
            raise ValueError(f"BackupWatch stream {self.stream!r}: a short name such as postgres or vault-raft")
        if not self.newest.strip():
            raise ValueError(f"BackupWatch {self.stream}: newest must be a PromQL expression")


def cronjob_watch(stream: str, what: str, namespace: str, cronjob: str) -> BackupWatch:
    """A stream written by a CronJob: kube-state-metrics' last successful run of that CronJob."""
    return BackupWatch(
        stream=stream,
        what=what,
        newest=f'max(kube_cronjob_status_last_successful_time{{namespace="{namespace}", cronjob="{cronjob}"}})',
    )


def rule_spec(watches: Sequence[BackupWatch], max_age_hours: int) -> dict:
    """The PrometheusRule spec: BackupTooOld per stream, BackupNeverSucceeded when it has no backup."""
    streams = [w.stream for w in watches]
    if len(set(streams)) != len(streams):
        raise ValueError(f"backup streams watched twice: {sorted({s for s in streams if streams.count(s) > 1})}")
    seconds = max_age_hours * 3600
    rules = []
    for w in watches:
        rules.append({
            "alert": "BackupTooOld",
            "expr": f"time() - ({w.newest}) > {seconds}",
            "for": "15m",
            "labels": {"severity": "critical", "stream": w.stream},
            "annotations": {
                "summary": f"The newest {w.what} is older than {max_age_hours} hours.",
                "description": f"core.backups.maxAgeHours allows {max_age_hours} hours; a restore now would lose more than that.",
                "runbook_url": RUNBOOK,
            },
        })
        rules.append({
            "alert": "BackupNeverSucceeded",
            "expr": f"absent({w.newest})",
            "for": f"{max_age_hours}h",
            "labels": {"severity": "critical", "stream": w.stream},
            "annotations": {
                "summary": f"No successful {w.what} is known.",
                "description": "The metric of the stream's newest backup has been missing for as long as a backup may be old.",
                "runbook_url": RUNBOOK,
            },
        })
    return {"groups": [{"name": "somaagenthub.backups", "rules": rules}]}


def backup_age_rule(watches: Sequence[BackupWatch], max_age_hours: int, namespace: str, ctx: KitContext,
                    opts: pulumi.ResourceOptions) -> pulumi.Resource:
    return custom_resource("monitoring.coreos.com/v1", "PrometheusRule", RULE_NAME, namespace,
                           spec=rule_spec(watches, max_age_hours), labels=recommended(RULE_NAME, "alert-rules"),
                           opts=ctx.after_metrics_crds(opts))


__all__ = ["BackupWatch", "backup_age_rule", "cronjob_watch", "rule_spec"]
