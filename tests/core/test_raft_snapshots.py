"""Vault's Raft snapshots: scheduled, snapshot-only, off the cluster, watched.

Two halves:

* the plan: in raft mode a hardened kit CronJob ``vault-snapshot`` in the secrets namespace runs on
  ``core.vault.snapshotSchedule`` and writes to the backup target (prod: the off-cluster bucket under
  ``vault-snapshots/``; a stack that keeps backups in the cluster: MinIO's ``vault-snapshots``),
  the Vault role ``raft-snapshot`` binds exactly the job's ServiceAccount, and the backup-age alert
  watches the job's last success (kube-state-metrics, whose CronJob collector the chart enables);
* OpenBao: the generated policy and role, loaded into a real OpenBao server with Raft storage and a
  TLS listener, let the job take a snapshot that restores into a fresh server, and nothing else;
  the job's own script (``components/core/secrets/scripts/raft-snapshot-save.sh``) runs unchanged.

What stands in for the cluster here, and why:

* the Kubernetes API server's TokenReview: a small HTTP server in this process answers Vault's
  TokenReview calls for the ServiceAccount tokens this test mints (an unsigned JWT carrying the
  claims the API server would put in a projected token). Vault itself parses the token, checks the
  audience and the bound ServiceAccount, and calls it exactly as it would call the API server;
  only the token's signature check (the API server's job) is not exercised. Because Vault runs
  outside a pod, the auth method is configured with ``disable_local_ca_jwt`` and a CA it never uses
  (plain-HTTP stand-in); the platform configures ``kubernetes_host`` only (vault_server.configure);
* the ``vault`` command is OpenBao's ``bao`` (the same CLI lineage; it reads the ``VAULT_*``
  environment), run by ``sh`` (dash here, busybox in the Vault image);
* the upload step: no ``mc`` binary and no S3 server run here, so its script runs against a fake
  ``mc`` that records what it was asked to do (command construction only; README, "What is not
  exercised here").
"""
from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from test_vault_access import _find_bao, _free_port_pair
from test_vault_unseal import stop

from components import settings as platform_settings
from components.config_schema import SettingsError
from components.core.secrets import raft_snapshots
from components.core.secrets.vault_access import (
    RAFT_SNAPSHOT_API_PATH, SNAPSHOT_POLICY, VAULT_AUDIENCE, snapshot_policy_hcl, snapshot_role_settings,
)
from tests.helpers import config_with, objects
from tools.render import render, stack_config

NAMESPACE = "soma-secrets"
JOB = raft_snapshots.NAME
MOUNT = "platform"
CANARY = {"value": "written-before-the-snapshot"}
SCRIPTS = raft_snapshots.SCRIPTS


def loaded(stack: str) -> platform_settings.PlatformSettings:
    return platform_settings.parse(stack_config(stack), stack)


def named(plan: dict, kind: str, name: str) -> dict:
    (found,) = [o for o in objects(plan, kind) if o["metadata"]["name"] == name]
    return found


def pod_of(cron_job: dict) -> dict:
    return cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def dev_in_raft_mode() -> dict[str, str]:
    """The dev stack with Vault in raft mode (its stack file keeps mode dev): backups stay in MinIO."""
    core = json.loads(stack_config("dev")["somaagenthub:core"])
    core["vault"]["mode"] = "raft"
    core["vault"]["address"] = "https://127.0.0.1:8200"
    return config_with("dev", core=core)


@pytest.fixture(scope="module")
def dev_raft_plan() -> dict:
    return render("dev", config=dev_in_raft_mode())


# --------------------------------------------------------------------------------------------
# Settings


def test_raft_mode_needs_a_snapshot_schedule_and_dev_mode_runs_none(plans):
    core = json.loads(stack_config("prod")["somaagenthub:core"])
    del core["vault"]["snapshotSchedule"]
    with pytest.raises(SettingsError) as caught:
        platform_settings.parse(config_with("prod", core=core), "prod")
    assert any(p.startswith("somaagenthub:core.vault.snapshotSchedule: mode 'raft'") for p in caught.value.problems)
    assert loaded("dev").core.vault.mode == "dev"
    assert [o for o in objects(plans["dev"], "CronJob") if o["metadata"]["namespace"] == loaded("dev").core.namespaces.secrets.name] == [], \
        "dev mode keeps Vault in memory: there is no Raft to snapshot"


@pytest.mark.parametrize(("schedule", "message"), [
    ("0 0 2 * * *", "got 6 fields (no seconds field"),
    ("CRON_TZ=UTC 17 * * * *", "the time zone is not part of the schedule"),
    ("60 * * * *", "the minute '60' is not within 0-59"),
    ("17 24 * * *", "the hour '24' is not within 0-23"),
    ("17 * 0 * *", "the day of month '0' is not within 1-31"),
    ("*/0 * * * *", "the minute step '0' is not a positive number"),
    ("@daily", "; got 1 field"),
    ("17 * * * MON", "the day of week 'MON' is not within 0-7"),
])
def test_a_bad_snapshot_schedule_is_refused_naming_what_is_wrong(schedule, message):
    core = json.loads(stack_config("prod")["somaagenthub:core"])
    core["vault"]["snapshotSchedule"] = schedule
    with pytest.raises(SettingsError) as caught:
        platform_settings.parse(config_with("prod", core=core), "prod")
    assert any(p.startswith("somaagenthub:core.vault.snapshotSchedule: must be a five-field cron schedule") and message in p
               for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("schedule", ["17 * * * *", "*/15 2-5 1,15 * 0", "0 3 * 1-12/3 7"])
def test_a_five_field_schedule_is_accepted(schedule):
    core = json.loads(stack_config("prod")["somaagenthub:core"])
    core["vault"]["snapshotSchedule"] = schedule
    assert platform_settings.parse(config_with("prod", core=core), "prod").core.vault.snapshot_schedule == schedule


# --------------------------------------------------------------------------------------------
# The plan


def test_prod_snapshots_vault_on_its_schedule_into_the_offsite_bucket(plans):
    prod = loaded("prod")
    cron = named(plans["prod"], "CronJob", JOB)
    assert cron["metadata"]["namespace"] == NAMESPACE
    assert cron["spec"]["schedule"] == prod.core.vault.snapshot_schedule == "17 * * * *"
    assert cron["spec"]["timeZone"] == "Etc/UTC" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = pod_of(cron)
    (save,), (upload,) = pod["initContainers"], pod["containers"]
    offsite = prod.core.backups.offsite
    upload_env = env_of(upload)
    assert upload_env["S3_ENDPOINT"] == offsite.endpoint and upload_env["S3_BUCKET"] == offsite.bucket == "soma-prod-backups"
    assert upload_env["S3_PREFIX"] == "vault-snapshots/" and upload_env["MC_REGION"] == offsite.region
    assert upload_env["S3_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "offsite-backups-credentials", "key": "access-key-id"}}
    save_env = env_of(save)
    assert save_env["VAULT_ADDR"] == "https://vault.soma-secrets.svc:8200" and save_env["VAULT_ROLE"] == SNAPSHOT_POLICY
    assert not any(isinstance(v, dict) for v in save_env.values()), "the Vault step holds no bucket key"
    assert "vault" in save["image"] and "minio" in upload["image"]
    egress = [named(plans["prod"], "NetworkPolicy", f"{JOB}-egress-{i}")["spec"]["egress"] for i in (0, 1)]
    vault_pods = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "vault", "component": "server"}}}
    assert egress == [
        [{"to": [vault_pods], "ports": [{"protocol": "TCP", "port": 8200}]}],
        [{"to": [{"ipBlock": {"cidr": offsite.egress_cidr}}], "ports": [{"protocol": "TCP", "port": 443}]}],
    ]
    vault_in = named(plans["prod"], "NetworkPolicy", f"vault-from-{JOB}")["spec"]
    assert vault_in["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == JOB
    assert vault_in["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8200}]


def test_the_snapshot_job_is_hardened_and_each_step_gets_only_its_own_inputs(plans):
    pod = pod_of(named(plans["prod"], "CronJob", JOB))
    assert pod["serviceAccountName"] == JOB and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in (*pod["initContainers"], *pod["containers"]):
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["limits"] and container["resources"]["requests"]
    (save,), (upload,) = pod["initContainers"], pod["containers"]
    own = {c["name"]: {m["name"] for m in c["volumeMounts"]} for c in (save, upload)}
    token = [n for n, v in volumes.items() if "projected" in v]
    ca = [n for n, v in volumes.items() if "secret" in v]
    assert volumes[token[0]]["projected"]["sources"][0]["serviceAccountToken"]["audience"] == VAULT_AUDIENCE
    assert volumes[ca[0]]["secret"] == {"secretName": "vault-tls", "defaultMode": 0o444, "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert set(token + ca) <= own["save"] and not set(token + ca) & own[JOB]
    snapshots = next(n for n, v in volumes.items() if v.get("emptyDir", {}).get("sizeLimit") == loaded("prod").core.vault.storage)
    assert snapshots in own["save"] and snapshots in own[JOB]


def test_the_job_runs_the_scripts_kept_in_the_repository(plans):
    config = named(plans["prod"], "ConfigMap", JOB)["data"]
    assert config == {name: (SCRIPTS / name).read_text() for name in (raft_snapshots.SAVE_SCRIPT, raft_snapshots.UPLOAD_SCRIPT)}
    pod = pod_of(named(plans["prod"], "CronJob", JOB))
    assert pod["initContainers"][0]["command"] == ["/bin/sh", f"/scripts/{raft_snapshots.SAVE_SCRIPT}"]
    assert pod["containers"][0]["command"] == ["/bin/sh", f"/scripts/{raft_snapshots.UPLOAD_SCRIPT}"]


def test_the_snapshot_role_binds_exactly_the_jobs_service_account(plans):
    plan = plans["prod"]
    roles = [r for r in plan["resources"] if r["type"] == "vault:kubernetes/authBackendRole:AuthBackendRole"
             and SNAPSHOT_POLICY in r["inputs"]["tokenPolicies"]]
    (role,) = roles
    pod = pod_of(named(plan, "CronJob", JOB))
    assert role["inputs"]["boundServiceAccountNames"] == [pod["serviceAccountName"]]
    assert role["inputs"]["boundServiceAccountNamespaces"] == [named(plan, "CronJob", JOB)["metadata"]["namespace"]]
    assert role["inputs"]["tokenPolicies"] == [SNAPSHOT_POLICY] and role["inputs"]["tokenNoDefaultPolicy"] is True
    assert role["inputs"]["audience"] == VAULT_AUDIENCE
    (policy,) = [r for r in plan["resources"] if r["type"] == "vault:index/policy:Policy" and r["inputs"]["name"] == SNAPSHOT_POLICY]
    blocks = [line for line in policy["inputs"]["policy"].splitlines() if line.strip() and not line.startswith("#")]
    assert blocks == [f'path "{RAFT_SNAPSHOT_API_PATH}" {{', '  capabilities = ["read"]', "}"]
    assert named(plan, "ServiceAccount", JOB)["metadata"]["namespace"] == NAMESPACE


def test_a_stack_keeping_backups_in_the_cluster_snapshots_into_minio(dev_raft_plan):
    cron = named(dev_raft_plan, "CronJob", JOB)
    template = cron["spec"]["jobTemplate"]["spec"]["template"]
    upload_env = env_of(template["spec"]["containers"][0])
    assert upload_env["S3_ENDPOINT"] == "http://minio.soma-data.svc.cluster.local:9000"
    assert (upload_env["S3_BUCKET"], upload_env["S3_PREFIX"]) == ("vault-snapshots", "")
    assert upload_env["S3_ACCESS_KEY_ID"]["secretKeyRef"]["name"] == "vault-snapshot-backups"
    keys = named(dev_raft_plan, "ExternalSecret", "vault-snapshot-backups")
    assert keys["metadata"]["namespace"] == NAMESPACE
    assert sorted(d["secretKey"] for d in keys["spec"]["data"]) == ["access-key-id", "secret-access-key"]
    assert objects(dev_raft_plan, "ExternalSecret") and not [
        o for o in objects(dev_raft_plan, "ExternalSecret") if o["metadata"]["name"] == "offsite-backups-credentials"]
    assert cron["spec"]["schedule"] == loaded("dev").core.vault.snapshot_schedule
    # MinIO admits labelled clients from the namespaces holding bucket keys: the job carries the label
    assert template["metadata"]["labels"]["somaagenthub.io/minio-client"] == "true"
    minio_in = named(dev_raft_plan, "NetworkPolicy", "minio-callers")["spec"]["ingress"][0]["from"]
    admitted = [p for p in minio_in if p["podSelector"]["matchLabels"] == {"somaagenthub.io/minio-client": "true"}]
    assert NAMESPACE in admitted[0]["namespaceSelector"]["matchExpressions"][0]["values"]
    egress = [named(dev_raft_plan, "NetworkPolicy", f"{JOB}-egress-{i}")["spec"]["egress"][0] for i in (0, 1)]
    assert {"protocol": "TCP", "port": 9000} in [p for e in egress for p in e["ports"]]


def test_a_stack_keeping_backups_in_the_cluster_passes_the_gate_with_every_rule_blocking(dev_raft_plan):
    from policies.config import load_config_file, stack_config_path
    from tools.gate import run_gate

    report = run_gate(dev_raft_plan, {**load_config_file(stack_config_path("dev")), "all": "mandatory"})
    assert report.passed, report.render()


@pytest.mark.parametrize("stack", ["staging", "prod", "raft-dev"])
def test_the_age_alert_watches_the_jobs_last_success_at_the_stacks_age(plans, dev_raft_plan, stack):
    plan = dev_raft_plan if stack == "raft-dev" else plans[stack]
    max_age = loaded("dev" if stack == "raft-dev" else stack).core.backups.max_age_hours
    rule = named(plan, "PrometheusRule", "soma-backup-age")
    rules = [r for r in rule["spec"]["groups"][0]["rules"] if r["labels"]["stream"] == "vault-raft"]
    assert [r["alert"] for r in rules] == ["BackupTooOld", "BackupNeverSucceeded"]
    metric = f'kube_cronjob_status_last_successful_time{{namespace="{NAMESPACE}", cronjob="{JOB}"}}'
    assert rules[0]["expr"] == f"time() - (max({metric})) > {max_age * 3600}"
    assert rules[1]["expr"] == f"absent(max({metric}))" and rules[1]["for"] == f"{max_age}h"


def test_kube_state_metrics_collects_cronjobs(plans):
    """kube_cronjob_status_last_successful_time (kube-state-metrics 2.20.0, internal/store/cronjob.go)
    exists only while the CronJob collector runs: the chart's default ``collectors`` list has it and
    our values leave the list alone."""
    (deployment,) = [o for o in objects(plans["prod"], "Deployment") if o["metadata"]["name"].endswith("kube-state-metrics")]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    (resources,) = [a for a in args if a.startswith("--resources=")]
    assert "cronjobs" in resources.removeprefix("--resources=").split(",")


# --------------------------------------------------------------------------------------------
# OpenBao: a Raft server with a TLS listener, and a stand-in for the API server's TokenReview


def openssl(*args: str, cwd: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make the test CA and Vault's certificate", pytrace=False)
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def certificates(folder: Path) -> Path:
    """A CA and a serving certificate for 127.0.0.1 signed by it, as cert-manager makes vault-tls."""
    folder.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "1", "-subj", "/CN=test-vault-ca", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", cwd=folder)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
            "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "tls.crt",
            "-days", "1", "-extfile", "san.ext", cwd=folder)
    return folder


@dataclass
class RaftServer:
    addr: str
    process: object
    root_token: str
    unseal_key: str
    folder: Path


def start_raft(bao: str, folder: Path, tls: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port_pair()
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = folder / "config.hcl"
    config.write_text(
        f'storage "raft" {{\n  path = "{folder / "data"}"\n  node_id = "node-1"\n}}\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n'
        f'  tls_cert_file = "{tls / "tls.crt"}"\n  tls_key_file = "{tls / "tls.key"}"\n}}\n'
        f'api_addr = "https://127.0.0.1:{port}"\ncluster_addr = "https://127.0.0.1:{port + 1}"\n'
        "disable_mlock = true\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    log = open(folder / "server.log", "ab")  # noqa: SIM115 - the child keeps the descriptor
    process = subprocess.Popen([bao, "server", f"-config={config}"], stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env)
    log.close()
    return process, f"https://127.0.0.1:{port}"


def wait_for(addr: str, ca: Path, predicate, deadline_s: float = 20.0) -> dict:
    deadline, status = time.monotonic() + deadline_s, {}
    while time.monotonic() < deadline:
        try:
            status = requests.get(f"{addr}/v1/sys/seal-status", timeout=1, verify=str(ca)).json()
            if predicate(status):
                return status
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    return status


def initialised(bao: str, folder: Path, tls: Path) -> RaftServer:
    """A fresh Raft server, initialised with one Shamir share and unsealed (the runbook's bootstrap)."""
    process, addr = start_raft(bao, folder, tls)
    ca = tls / "ca.crt"
    assert wait_for(addr, ca, lambda s: "initialized" in s).get("initialized") is False, (folder / "server.log").read_text()[-2000:]
    init = requests.post(f"{addr}/v1/sys/init", json={"secret_shares": 1, "secret_threshold": 1}, timeout=30, verify=str(ca))
    init.raise_for_status()
    key, token = init.json()["keys_base64"][0], init.json()["root_token"]
    requests.post(f"{addr}/v1/sys/unseal", json={"key": key}, timeout=10, verify=str(ca)).raise_for_status()
    assert wait_for(addr, ca, lambda s: s.get("sealed") is False).get("sealed") is False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # unsealed is not yet active: wait until it answers as leader
        health = requests.get(f"{addr}/v1/sys/health", timeout=1, verify=str(ca))
        if health.status_code == 200:
            break
        time.sleep(0.1)
    return RaftServer(addr, process, token, key, folder)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class Account:
    namespace: str
    name: str
    uid: str
    audiences: tuple[str, ...]

    def jwt(self) -> str:
        """The shape of a projected ServiceAccount token (claims as the API server writes them);
        the signature is random bytes: checking it is the API server's job, stood in for here."""
        claims = {"aud": list(self.audiences), "iss": "https://kubernetes.default.svc.cluster.local",
                  "sub": f"system:serviceaccount:{self.namespace}:{self.name}", "iat": int(time.time()), "exp": int(time.time()) + 600,
                  "kubernetes.io": {"namespace": self.namespace, "serviceaccount": {"name": self.name, "uid": self.uid}}}
        header = {"alg": "RS256", "kid": "test"}
        return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), b64url(os.urandom(256))])


class TokenReviews:
    """Answers ``POST /apis/authentication.k8s.io/v1/tokenreviews`` for the tokens it minted, as the
    API server does: authenticated, with the account's username, uid and the token's audiences."""

    def __init__(self):
        self.issued: dict[str, Account] = {}
        self.requests: list[dict] = []
        reviews = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reviews.requests.append({"path": self.path, "spec": body.get("spec", {})})
                account = reviews.issued.get(body.get("spec", {}).get("token", ""))
                status: dict = {"authenticated": False}
                if account is not None and self.path == "/apis/authentication.k8s.io/v1/tokenreviews":
                    status = {"authenticated": True, "audiences": list(account.audiences),
                              "user": {"username": f"system:serviceaccount:{account.namespace}:{account.name}", "uid": account.uid}}
                answer = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def mint(self, account: Account) -> str:
        token = account.jwt()
        self.issued[token] = account
        return token

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


JOB_ACCOUNT = Account(NAMESPACE, JOB, str(uuid.uuid4()), (VAULT_AUDIENCE,))


@dataclass
class Site:
    """The source Vault (configured as the platform configures it) and what the tests need around it."""

    source: RaftServer
    tls: Path
    reviews: TokenReviews
    bao: str
    bin: Path

    @property
    def ca(self) -> Path:
        return self.tls / "ca.crt"

    def call(self, token: str, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, f"{self.source.addr}/v1/{path}", headers={"X-Vault-Token": token},
                                timeout=30, verify=str(self.ca), **kwargs)

    def login(self, jwt: str) -> requests.Response:
        return requests.post(f"{self.source.addr}/v1/auth/kubernetes/login", json={"role": SNAPSHOT_POLICY, "jwt": jwt},
                             timeout=10, verify=str(self.ca))


@pytest.fixture(scope="module")
def vault_site(tmp_path_factory):
    bao = _find_bao()
    root = tmp_path_factory.mktemp("raft-snapshots")
    tls = certificates(root / "tls")
    source = initialised(bao, root / "source", tls)
    reviews = TokenReviews()
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "vault").symlink_to(bao)  # the script calls `vault`; here it is OpenBao's CLI
    vault_site = Site(source, tls, reviews, bao, bin_dir)
    try:
        root_call = lambda method, path, **kw: vault_site.call(source.root_token, method, path, **kw)  # noqa: E731
        root_call("POST", f"sys/mounts/{MOUNT}", json={"type": "kv", "options": {"version": "2"}}).raise_for_status()
        deadline = time.monotonic() + 20
        while True:  # a new KV v2 mount refuses writes (400) until its set-up finishes
            written = root_call("POST", f"{MOUNT}/data/soma-data/app-db/owner", json={"data": CANARY})
            if written.ok or time.monotonic() > deadline:
                written.raise_for_status()
                break
            time.sleep(0.1)
        root_call("POST", "sys/auth/kubernetes", json={"type": "kubernetes"}).raise_for_status()
        # the platform sets kubernetes_host only (Vault runs in a pod); here Vault runs outside one
        root_call("POST", "auth/kubernetes/config", json={
            "kubernetes_host": reviews.url, "disable_local_ca_jwt": True, "kubernetes_ca_cert": vault_site.ca.read_text()}).raise_for_status()
        # what Secrets.raft_snapshot_role hands to pulumi-vault, unchanged
        root_call("PUT", f"sys/policies/acl/{SNAPSHOT_POLICY}", json={"policy": snapshot_policy_hcl()}).raise_for_status()
        role = snapshot_role_settings(NAMESPACE, JOB)
        name = role.pop("role_name")
        root_call("POST", f"auth/kubernetes/role/{name}", json=role).raise_for_status()
        yield vault_site
    finally:
        reviews.close()
        stop(source.process)


def run_save(vault_site: Site, out: Path, jwt: str, ca: Path | None = None) -> subprocess.CompletedProcess:
    """The CronJob's first step, as the pod runs it: the repository's script, the pod's environment."""
    out.mkdir(parents=True, exist_ok=True)
    jwt_file = out.parent / f"{out.name}.jwt"
    jwt_file.write_text(jwt)
    env = {
        "PATH": f"{vault_site.bin}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(out.parent),
        "VAULT_ADDR": vault_site.source.addr,
        "VAULT_CACERT": str(ca or vault_site.ca),
        "VAULT_AUTH_PATH": "kubernetes",
        "VAULT_ROLE": SNAPSHOT_POLICY,
        "VAULT_JWT_FILE": str(jwt_file),
        "SNAPSHOT_DIR": str(out),
    }
    return subprocess.run(["sh", str(SCRIPTS / raft_snapshots.SAVE_SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def test_the_snapshot_policy_and_role_are_stored_as_generated(vault_site):
    root = vault_site.source.root_token
    stored = vault_site.call(root, "GET", f"sys/policies/acl/{SNAPSHOT_POLICY}").json()["data"]["policy"]
    assert stored == snapshot_policy_hcl()
    role = vault_site.call(root, "GET", f"auth/kubernetes/role/{SNAPSHOT_POLICY}").json()["data"]
    expected = snapshot_role_settings(NAMESPACE, JOB)
    expected.pop("role_name")
    assert {k: role[k] for k in expected} == expected


def test_the_jobs_login_yields_a_token_that_takes_snapshots_and_nothing_else(vault_site):
    login = vault_site.login(vault_site.reviews.mint(JOB_ACCOUNT))
    assert login.status_code == 200, login.text
    token = login.json()["auth"]["client_token"]
    info = vault_site.call(vault_site.source.root_token, "POST", "auth/token/lookup", json={"token": token}).json()["data"]
    assert info["policies"] == [SNAPSHOT_POLICY] and info["type"] == "batch", info
    assert vault_site.reviews.requests[-1]["spec"]["audiences"] == [VAULT_AUDIENCE]

    snapshot = vault_site.call(token, "GET", RAFT_SNAPSHOT_API_PATH)
    assert snapshot.status_code == 200, snapshot.text
    assert len(snapshot.content) > 1000 and gzip.decompress(snapshot.content), "a snapshot is a gzip archive"

    denied = [
        ("GET", f"{MOUNT}/data/soma-data/app-db/owner", None),          # read a secret
        ("LIST", f"{MOUNT}/metadata/", None),                             # list secrets
        ("POST", f"{MOUNT}/data/soma-data/app-db/owner", {"data": {"value": "planted"}}),  # write one
        ("POST", RAFT_SNAPSHOT_API_PATH, snapshot.content),               # restore
        ("POST", f"{RAFT_SNAPSHOT_API_PATH}-force", snapshot.content),    # restore with other keys
        ("GET", "sys/storage/raft/configuration", None),
        ("POST", "sys/storage/raft/remove-peer", {"server_id": "node-1"}),
        ("GET", "sys/policies/acl", None),
        ("PUT", f"sys/policies/acl/{SNAPSHOT_POLICY}", {"policy": 'path "*" { capabilities = ["sudo", "read"] }'}),
        ("GET", "auth/token/lookup-self", None),                         # no default policy either
        ("GET", "cubbyhole/anything", None),
    ]
    for method, path, body in denied:
        kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
        answer = vault_site.call(token, method, path, **kwargs)
        assert answer.status_code == 403, (method, path, answer.status_code, answer.text)
    kept = vault_site.call(vault_site.source.root_token, "GET", f"{MOUNT}/data/soma-data/app-db/owner").json()["data"]["data"]
    assert kept == CANARY


@pytest.mark.parametrize(("account", "why"), [
    (Account(NAMESPACE, "vault", str(uuid.uuid4()), (VAULT_AUDIENCE,)), "service account name not authorized"),
    (Account(NAMESPACE, "offsite-backups", str(uuid.uuid4()), (VAULT_AUDIENCE,)), "service account name not authorized"),
    (Account("soma-data", JOB, str(uuid.uuid4()), (VAULT_AUDIENCE,)), "namespace not authorized"),
    (Account(NAMESPACE, JOB, JOB_ACCOUNT.uid, ("https://kubernetes.default.svc.cluster.local",)), "audience"),
])
def test_no_other_account_and_no_api_server_token_logs_in(vault_site, account, why):
    """Another workload of the same namespace, the same name elsewhere, or the job's own token minted
    for the API server (what automounting would give): Vault refuses each before any snapshot."""
    refused = vault_site.login(vault_site.reviews.mint(account))
    assert refused.status_code == 403 and why in refused.text, refused.text


def test_the_jobs_script_saves_a_snapshot_that_restores_into_a_fresh_vault(vault_site, tmp_path):
    out = tmp_path / "snapshots"
    started = time.monotonic()
    result = run_save(vault_site, out, vault_site.reviews.mint(JOB_ACCOUNT))
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    (snapshot,) = out.iterdir()
    assert snapshot.name.startswith("vault-raft-") and snapshot.name.endswith("Z.snap"), snapshot.name
    size = snapshot.stat().st_size
    assert size > 1000 and f"({size} bytes)" in result.stdout
    print(f"\nsnapshot {snapshot.name}: {size} bytes in {took:.2f}s")

    # The restore drill of docs/runbooks/core-secrets.md, on a second, freshly initialised server.
    target = initialised(vault_site.bao, tmp_path / "target", vault_site.tls)
    try:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))},
               "VAULT_ADDR": target.addr, "VAULT_CACERT": str(vault_site.ca), "VAULT_TOKEN": target.root_token}
        vault = [str(vault_site.bin / "vault"), "operator", "raft", "snapshot", "restore"]
        plain = subprocess.run([*vault, str(snapshot)], env=env, capture_output=True, text=True, timeout=60)
        assert plain.returncode != 0 and "snapshot-force" in plain.stderr, "another cluster's keys: a plain restore refuses"
        forced = subprocess.run([*vault, "-force", str(snapshot)], env=env, capture_output=True, text=True, timeout=60)
        assert forced.returncode == 0, forced.stderr
        # The restored data answers to the source's keys and tokens, not to the fresh server's: once
        # Vault reseals with the restored keyring, the source's unseal key opens it (the runbook's step).
        ca, read, unsealed_with_source_key = vault_site.ca, None, False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:  # the server stops answering for a few seconds while it swaps its keyring
                status = requests.get(f"{target.addr}/v1/sys/seal-status", timeout=2, verify=str(ca)).json()
                if status.get("sealed"):
                    answer = requests.post(f"{target.addr}/v1/sys/unseal", json={"key": vault_site.source.unseal_key},
                                           timeout=5, verify=str(ca))
                    unsealed_with_source_key |= answer.status_code == 200 and answer.json().get("sealed") is False
                read = requests.get(f"{target.addr}/v1/{MOUNT}/data/soma-data/app-db/owner",
                                    headers={"X-Vault-Token": vault_site.source.root_token}, timeout=2, verify=str(ca))
                if read.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        assert read is not None and read.status_code == 200, read.text if read is not None else "no answer"
        assert read.json()["data"]["data"] == CANARY
        assert unsealed_with_source_key, "the restored Vault resealed and opened with the source's unseal key"
        fresh = requests.get(f"{target.addr}/v1/{MOUNT}/data/soma-data/app-db/owner",
                             headers={"X-Vault-Token": target.root_token}, timeout=5, verify=str(ca))
        assert fresh.status_code == 403, "the fresh server's own root token is gone with its data"
    finally:
        stop(target.process)


def test_the_script_refuses_an_unknown_certificate_authority(vault_site, tmp_path):
    """TLS is verified against VAULT_CACERT: another CA (a man in the middle) gets no token and no snapshot."""
    other = certificates(tmp_path / "other-ca")
    out = tmp_path / "snapshots"
    result = run_save(vault_site, out, vault_site.reviews.mint(JOB_ACCOUNT), ca=other / "ca.crt")
    assert result.returncode != 0
    assert "certificate" in result.stderr.lower(), result.stderr
    assert list(out.iterdir()) == []


def test_the_script_stops_when_vault_refuses_the_login(vault_site, tmp_path):
    out = tmp_path / "snapshots"
    result = run_save(vault_site, out, vault_site.reviews.mint(Account(NAMESPACE, "vault", str(uuid.uuid4()), (VAULT_AUDIENCE,))))
    assert result.returncode != 0 and "service account name not authorized" in result.stderr, result.stderr
    assert list(out.iterdir()) == [], "no snapshot, not even an empty or partial one"


# --------------------------------------------------------------------------------------------
# The upload step: command construction only (no mc binary, no S3 server here)


FAKE_MC = """#!/bin/sh
# Records each call: its arguments, its standard input, the environment mc reads.
{
  printf 'ARGS'; for a in "$@"; do printf ' [%s]' "$a"; done; printf '\\n'
  printf 'REGION [%s] CONFIG [%s]\\n' "${MC_REGION:-}" "${MC_CONFIG_DIR:-}"
  if [ "$1" = alias ]; then printf 'STDIN '; cat; fi
} >> "$MC_LOG"
"""


def run_upload(tmp_path: Path, files: dict[str, bytes], prefix: str) -> tuple[subprocess.CompletedProcess, str]:
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    for name, content in files.items():
        (snapshots / name).write_bytes(content)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mc").write_text(FAKE_MC)
    (bin_dir / "mc").chmod(0o755)
    log = tmp_path / "mc.log"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "MC_LOG": str(log), "SNAPSHOT_DIR": str(snapshots),
           "S3_ENDPOINT": "https://backup.soma.example.com", "S3_BUCKET": "soma-prod-backups", "S3_PREFIX": prefix,
           "MC_REGION": "eu-central-1", "MC_CONFIG_DIR": str(tmp_path / "mc"),
           "S3_ACCESS_KEY_ID": "AKEXAMPLE", "S3_SECRET_ACCESS_KEY": "s3cr3t/with+url=chars"}
    result = subprocess.run(["sh", str(SCRIPTS / raft_snapshots.UPLOAD_SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    return result, log.read_text() if log.exists() else ""


def test_the_upload_step_copies_the_snapshot_under_the_streams_prefix_with_keys_on_stdin(tmp_path):
    name = "vault-raft-20261129T031700Z.snap"
    result, calls = run_upload(tmp_path, {name: b"snapshot-bytes", f"{name}.partial": b"x"}, "vault-snapshots/")
    assert result.returncode == 0, result.stderr
    lines = calls.splitlines()
    assert lines[0] == "ARGS [alias] [set] [target] [https://backup.soma.example.com] [--api] [S3v4]"
    assert lines[2] == "STDIN AKEXAMPLE", "the access key on standard input"
    assert lines[3] == "s3cr3t/with+url=chars", "the secret key on standard input, verbatim"
    assert lines[4] == f"ARGS [cp] [--quiet] [{tmp_path / 'snapshots' / name}] [target/soma-prod-backups/vault-snapshots/{name}]"
    assert lines[5] == f"REGION [eu-central-1] CONFIG [{tmp_path / 'mc'}]"
    assert "s3cr3t" not in "".join(line for line in lines if line.startswith("ARGS")), "no key among mc's arguments"


@pytest.mark.parametrize("files", [{}, {"vault-raft-20261129T031700Z.snap.partial": b"x"}, {"vault-raft-20261129T031700Z.snap": b""},
                                   {"vault-raft-20261129T031700Z.snap": b"a", "vault-raft-20261129T041700Z.snap": b"b"}],
                         ids=["none", "partial-only", "empty", "two"])
def test_the_upload_step_refuses_anything_but_one_complete_snapshot(tmp_path, files):
    result, calls = run_upload(tmp_path, files, "")
    assert result.returncode != 0 and "expected one complete snapshot" in result.stderr
    assert calls == "", "mc is never called"
