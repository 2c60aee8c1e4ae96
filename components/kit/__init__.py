"""Hardened building blocks: the secure choice is the default, an opt-out needs a reason."""
from components.kit.chart import chart_crds, helm_chart
from components.kit.context import KitContext, Telemetry
from components.kit.custom import custom_resource
from components.kit.job import CronJob, CronJobArgs, Job, JobArgs, ScriptFiles, SecretFile, ServiceAccountToken, Step
from components.kit.labels import recommended, selector, waiver_annotations
from components.kit.namespace import PlatformNamespace
from components.kit.observability import pod_monitor, service_monitor
from components.kit.network import Peer, allow_egress, allow_ingress
from components.kit.containers import SecretEnv
from components.kit.workload import Egress, Workload, WorkloadArgs

__all__ = [
    "CronJob",
    "CronJobArgs",
    "Egress",
    "Job",
    "JobArgs",
    "KitContext",
    "Peer",
    "PlatformNamespace",
    "ScriptFiles",
    "SecretEnv",
    "SecretFile",
    "ServiceAccountToken",
    "Step",
    "Telemetry",
    "Workload",
    "WorkloadArgs",
    "allow_egress",
    "allow_ingress",
    "custom_resource",
    "chart_crds",
    "helm_chart",
    "pod_monitor",
    "recommended",
    "selector",
    "service_monitor",
    "waiver_annotations",
]
