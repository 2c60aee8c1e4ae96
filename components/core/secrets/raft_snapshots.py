"""Vault's Raft snapshots, on a schedule, to the backup target, through a snapshot-only Vault login.

Only in ``raft`` mode (dev mode keeps Vault in memory: there is nothing to snapshot). The kit
CronJob ``vault-snapshot`` in the secrets namespace runs ``core.vault.snapshotSchedule`` (UTC), one
run at a time, in two steps that share one folder:

1. ``save`` (the Vault image) logs into Vault with the Kubernetes auth method as the job's own
   ServiceAccount (a projected token for the audience ``vault``) under the role ``raft-snapshot``,
   whose policy reads ``sys/storage/raft/snapshot`` and nothing else (no restore, no secret),
   verifies Vault's certificate against the CA of the ``vault-tls`` Secret (that key alone is
   mounted, never the private key beside it), and saves a snapshot;
2. ``vault-snapshot`` (the MinIO image) uploads it with ``mc`` to
   ``<bucket>/<prefix>vault-raft-<UTC time>.snap`` on the backup target: under ``vault-snapshots/``
   in the off-cluster bucket, or in MinIO's ``vault-snapshots`` bucket where a stack keeps its
   backups in the cluster. Only this step holds the target's keys.

The two scripts are the files in ``scripts/``, shipped unchanged in the job's ConfigMap and run
unchanged against OpenBao by tests/core/test_raft_snapshots.py. The flows are declared here: the
job to Vault (which admits it) and the job to the target (its ``peer`` and ``port``). The job's last
successful run is the stream's newest backup (kube-state-metrics), which the backup-age alert
watches (components/core/backup_watch.py).
"""
from __future__ import annotations

from pathlib import Path

import pulumi

from components.core.backup_watch import BackupWatch, cronjob_watch
from components.core.interfaces import BucketAccess, ObjectStorage
from components.core.secrets import Secrets, vault_server
from components.core.secrets.vault_access import VAULT_AUDIENCE
from components.kit import (
    CronJob, CronJobArgs, Egress, JobArgs, KitContext, Peer, ScriptFiles, SecretFile, ServiceAccountToken, Step,
    allow_ingress, selector,
)
from components.settings import CoreSettings, Resources

NAME = "vault-snapshot"
"""The CronJob and its ServiceAccount: the one account the snapshot role admits."""
BUCKET = "vault-snapshots"
STREAM = "vault-raft"
SCRIPTS = Path(__file__).parent / "scripts"
SAVE_SCRIPT = "raft-snapshot-save.sh"
UPLOAD_SCRIPT = "raft-snapshot-upload.sh"
SCRIPT_DIR = "/scripts"
SNAPSHOT_DIR = "/snapshots"
TOKEN_DIR = "/var/run/secrets/vault"
CA_DIR = "/vault/tls"
SAVE_RESOURCES = Resources(cpu_request="50m", memory_request="64Mi", cpu_limit="500m", memory_limit="256Mi")
UPLOAD_RESOURCES = Resources(cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="512Mi")


def scripts() -> dict[str, str]:
    """The two step scripts, as the repository holds them."""
    return {name: (SCRIPTS / name).read_text() for name in (SAVE_SCRIPT, UPLOAD_SCRIPT)}


def job_args(settings: CoreSettings, access: BucketAccess, endpoint: vault_server.VaultEndpoint, role: str) -> CronJobArgs:
    """The CronJob: ``save`` then upload, each with its own inputs only (see the module docstring)."""
    namespace = settings.namespaces.secrets.name
    if endpoint.ca_secret is None:
        raise ValueError("Raft snapshots need Vault's TLS listener (raft mode): the endpoint names no CA")
    save = Step(
        "save", "vault", ("/bin/sh", f"{SCRIPT_DIR}/{SAVE_SCRIPT}"), SAVE_RESOURCES,
        env={
            "VAULT_ADDR": endpoint.url,
            "VAULT_CACERT": f"{CA_DIR}/ca.crt",
            "VAULT_AUTH_PATH": vault_server.KUBERNETES_AUTH_PATH,
            "VAULT_ROLE": role,
            "VAULT_JWT_FILE": f"{TOKEN_DIR}/token",
            "SNAPSHOT_DIR": SNAPSHOT_DIR,
            "HOME": "/tmp",
        },
        secret_files=(SecretFile(endpoint.ca_secret, ("ca.crt",), CA_DIR),),
        token=ServiceAccountToken(audience=VAULT_AUDIENCE, path=TOKEN_DIR),
    )
    job = JobArgs(
        name=NAME,
        namespace=namespace,
        component="vault-snapshot",
        image="minio",
        command=("/bin/sh", f"{SCRIPT_DIR}/{UPLOAD_SCRIPT}"),
        resources=UPLOAD_RESOURCES,
        env={
            "S3_ENDPOINT": access.endpoint,
            "S3_BUCKET": access.bucket,
            "S3_PREFIX": access.prefix,
            "MC_REGION": access.region,
            "MC_CONFIG_DIR": "/tmp/mc",
            "SNAPSHOT_DIR": SNAPSHOT_DIR,
        },
        secret_env=access.key_env(),
        files=ScriptFiles(SCRIPT_DIR, scripts()),
        steps=(save,),
        # a snapshot is at most the size of Vault's data volume
        shared_dirs={SNAPSHOT_DIR: settings.vault.storage},
        pod_labels=dict(access.client_labels),
        egress=(
            Egress(to=Peer(namespace=namespace, pods=vault_server.POD_LABELS), ports=(vault_server.PORT,)),
            Egress(to=access.peer, ports=(access.port,)),
        ),
        backoff_limit=2,
        active_deadline_seconds=3600,
    )
    if not settings.vault.snapshot_schedule:
        raise ValueError("Raft snapshots need core.vault.snapshotSchedule")
    return CronJobArgs(job=job, schedule=settings.vault.snapshot_schedule)


class RaftSnapshots(pulumi.ComponentResource):
    """``somaagenthub:core:RaftSnapshots``: the CronJob, its Vault role, Vault's ingress from it,
    and ``backup_watch`` for the age alert."""

    def __init__(self, settings: CoreSettings, ctx: KitContext, secrets: Secrets, target: ObjectStorage,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:core:RaftSnapshots", "raft-snapshots", None, opts)
        if settings.vault.mode != "raft":
            raise ValueError(f"Raft snapshots need core.vault.mode raft, not {settings.vault.mode}")
        child = pulumi.ResourceOptions(parent=self)
        namespace = settings.namespaces.secrets.name
        self.access = target.access(BUCKET)
        if self.access.credentials.namespace != namespace:
            raise ValueError(f"the {BUCKET} keys are delivered to {self.access.credentials.namespace}, not to the job's {namespace}")
        self.role = secrets.raft_snapshot_role(namespace, NAME)
        self.args = job_args(settings, self.access, secrets.endpoint, self.role)
        self.cron_job = CronJob(self.args, ctx, opts=child)
        self.vault_ingress = allow_ingress(f"vault-from-{NAME}", namespace, vault_server.POD_LABELS,
                                           [Peer(namespace=namespace, pods=selector(NAME))], [vault_server.PORT], child)
        self.backup_watch: BackupWatch = cronjob_watch(STREAM, "Vault Raft snapshot", namespace, NAME)
        self.register_outputs({"schedule": self.args.schedule, "destination": f"{self.access.url}vault-raft-<UTC time>.snap"})


__all__ = ["RaftSnapshots", "job_args", "scripts"]
