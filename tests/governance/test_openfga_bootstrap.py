"""The bootstrap Job's script (components/governance/openfga/bootstrap.py), run as the pod runs it: a
``python bootstrap.py`` process with the Job's environment.

Real here: OpenBao (``bao server -dev``, Vault's API) with a KV v2 mount and the Kubernetes auth method,
the Job's Vault policy and role exactly as the program hands them to pulumi-vault, and a login with a
ServiceAccount token (the API server's TokenReview answered by the stand-in of tests/core/test_raft_snapshots.py).

Not real: OpenFGA. No OpenFGA server runs here (the `fga` CLI embeds the engine for ``model test`` only and
serves no API; building the server needs a Go toolchain newer than Debian's). The script talks to a small
in-memory stand-in that answers the five calls it makes as OpenFGA's HTTP API documents them (ListStores
with continuation tokens, CreateStore, ReadAuthorizationModels newest first, WriteAuthorizationModel,
/healthz) and echoes models back with the extra empty fields a server adds. What is shown is the script's
idempotency logic; that a real OpenFGA v1.18.3 answers exactly so is not exercised.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from test_raft_snapshots import Account, TokenReviews, certificates  # noqa: E402

from components.core.secrets.vault_access import VAULT_AUDIENCE  # noqa: E402
from tests.openbao import dev_server  # noqa: E402
from components.governance import openfga  # noqa: E402

NAMESPACE = "soma-governance"
MOUNT = "platform"


class FakeOpenFga:
    """Stores and models in memory behind OpenFGA's HTTP paths; counts the writes it was asked for."""

    def __init__(self):
        self.stores: list[dict] = []
        self.models: dict[str, list[dict]] = {}
        self.writes = {"stores": 0, "models": 0}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                parts = url.path.strip("/").split("/")
                if url.path == "/healthz":
                    return self._answer(200, {"status": "SERVING"})
                if parts == ["stores"]:
                    start = int(query.get("continuation_token") or 0)
                    size = int(query.get("page_size", 50))
                    page = fake.stores[start:start + size]
                    more = start + size < len(fake.stores)
                    return self._answer(200, {"stores": page, "continuation_token": str(start + size) if more else ""})
                if len(parts) == 3 and parts[0] == "stores" and parts[2] == "authorization-models":
                    models = list(reversed(fake.models.get(parts[1], [])))[: int(query.get("page_size", 50))]
                    return self._answer(200, {"authorization_models": models, "continuation_token": ""})
                return self._answer(404, {"code": "undefined_endpoint"})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                parts = urlparse(self.path).path.strip("/").split("/")
                if parts == ["stores"]:
                    store = {"id": uuid.uuid4().hex.upper()[:26], "name": body["name"], "created_at": "2026-11-29T00:00:00Z"}
                    fake.stores.append(store)
                    fake.writes["stores"] += 1
                    return self._answer(201, store)
                if len(parts) == 3 and parts[0] == "stores" and parts[2] == "authorization-models":
                    if parts[1] not in {s["id"] for s in fake.stores}:
                        return self._answer(404, {"code": "store_id_not_found"})
                    model_id = uuid.uuid4().hex.upper()[:26]
                    # as read back: the server's own empty fields beside what was written
                    stored = {"id": model_id, "conditions": {}, **body,
                              "type_definitions": [{**t, "metadata": {**(t.get("metadata") or {}), "module": "", "source_info": None}}
                                                   for t in body["type_definitions"]]}
                    fake.models.setdefault(parts[1], []).append(stored)
                    fake.writes["models"] += 1
                    return self._answer(201, {"authorization_model_id": model_id})
                return self._answer(404, {"code": "undefined_endpoint"})

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def vault(tmp_path_factory):
    """OpenBao with the platform's KV mount, Kubernetes auth, and the bootstrap Job's policy and role as generated."""
    folder = tmp_path_factory.mktemp("openfga-bootstrap-bao")
    with dev_server(folder) as server:
        yield from _configured(server, folder)


def _configured(server, folder: Path):
    reviews = TokenReviews()
    root = lambda method, path, **kw: requests.request(  # noqa: E731
        method, f"{server.addr}/v1/{path}", headers={"X-Vault-Token": server.root_token}, timeout=10, **kw)
    try:
        root("POST", f"sys/mounts/{MOUNT}", json={"type": "kv", "options": {"version": "2"}}).raise_for_status()
        deadline = time.monotonic() + 20
        while not root("POST", f"{MOUNT}/data/canary", json={"data": {"ok": "1"}}).ok:  # a new KV v2 mount settles first
            assert time.monotonic() < deadline
            time.sleep(0.1)
        root("POST", "sys/auth/kubernetes", json={"type": "kubernetes"}).raise_for_status()
        # the method insists on a CA for the API server; the TokenReview stand-in speaks plain HTTP and ignores it
        ca = (certificates(folder / "tls") / "ca.crt").read_text()
        root("POST", "auth/kubernetes/config", json={"kubernetes_host": reviews.url, "disable_local_ca_jwt": True,
                                                     "kubernetes_ca_cert": ca}).raise_for_status()
        role = openfga.bootstrap_role_settings(NAMESPACE)
        name = role.pop("role_name")
        root("PUT", f"sys/policies/acl/{name}", json={"policy": openfga.bootstrap_policy_hcl(MOUNT, NAMESPACE)}).raise_for_status()
        root("POST", f"auth/kubernetes/role/{name}", json=role).raise_for_status()
        yield server, reviews, root
    finally:
        reviews.close()


@pytest.fixture
def fga():
    fake = FakeOpenFga()
    yield fake
    fake.close()


def run_bootstrap(vault, fga: FakeOpenFga, tmp_path: Path, model: dict | None = None,
                  account: Account | None = None) -> subprocess.CompletedProcess:
    server, reviews, _ = vault
    jwt = tmp_path / "token"
    jwt.write_text(reviews.mint(account or Account(NAMESPACE, openfga.BOOTSTRAP_JOB, str(uuid.uuid4()), (VAULT_AUDIENCE,))))
    model_file = tmp_path / "model.json"
    model_file.write_text(json.dumps(model) if model is not None else openfga.MODEL_JSON.read_text())
    job = openfga.bootstrap_job(_settings(), NAMESPACE, server.addr, False, MOUNT, "soma-secrets")
    env = {**job.env, "FGA_API_URL": fga.url, "FGA_MODEL_FILE": str(model_file), "VAULT_JWT_FILE": str(jwt),
           "VAULT_ADDR": server.addr, "FGA_WAIT_SECONDS": "10", "PATH": os.environ["PATH"]}
    return subprocess.run([sys.executable, str(openfga.BOOTSTRAP_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)


def _settings():
    from components.settings import parse
    from tests.helpers import stack_config

    return parse(stack_config("dev"), "dev").governance.openfga


def result(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def published(vault) -> tuple[dict, int]:
    _, _, root = vault
    body = root("GET", f"{MOUNT}/data/{openfga.ids_path(NAMESPACE)}").json()["data"]
    return body["data"], body["metadata"]["version"]


def test_a_second_run_changes_nothing_and_a_new_model_only_adds_a_model(vault, fga, tmp_path):
    first = result(run_bootstrap(vault, fga, tmp_path))
    assert first["store_created"] and first["model_written"] and first["vault_written"]
    assert fga.writes == {"stores": 1, "models": 1}
    ids, version = published(vault)
    assert ids == {"store-id": first["store_id"], "model-id": first["model_id"], "store-name": _settings().store, "api-url": fga.url}

    again = result(run_bootstrap(vault, fga, tmp_path))
    assert (again["store_id"], again["model_id"]) == (first["store_id"], first["model_id"])
    assert not (again["store_created"] or again["model_written"] or again["vault_written"])
    assert fga.writes == {"stores": 1, "models": 1} and published(vault) == (ids, version)

    changed = json.loads(openfga.MODEL_JSON.read_text())
    changed["type_definitions"].append({"type": "team", "relations": {"member": {"this": {}}},
                                        "metadata": {"relations": {"member": {"directly_related_user_types": [{"type": "user"}]}}}})
    third = result(run_bootstrap(vault, fga, tmp_path, model=changed))
    assert third["store_id"] == first["store_id"] and third["model_id"] != first["model_id"] and third["model_written"]
    assert fga.writes == {"stores": 1, "models": 2}
    assert published(vault) == ({**ids, "model-id": third["model_id"]}, version + 1)


def test_the_store_is_found_past_the_first_page_and_two_of_a_name_stop_the_job(vault, fga, tmp_path):
    fga.stores += [{"id": f"OTHER{i:021d}", "name": f"other-{i}"} for i in range(150)]
    created = result(run_bootstrap(vault, fga, tmp_path))
    fga.stores.append(fga.stores.pop(150))  # the platform's store moves to the end, past the first page of 100
    found = result(run_bootstrap(vault, fga, tmp_path))
    assert found["store_id"] == created["store_id"] and not found["store_created"]
    fga.stores.append({"id": "DUPLICATE00000000000000000", "name": _settings().store})
    done = run_bootstrap(vault, fga, tmp_path)
    assert done.returncode == 1 and "2 stores are named" in done.stderr


def test_only_the_jobs_own_account_may_publish_and_only_at_its_path(vault, fga, tmp_path):
    server, reviews, _ = vault
    stranger = Account(NAMESPACE, "openfga", str(uuid.uuid4()), (VAULT_AUDIENCE,))
    done = run_bootstrap(vault, fga, tmp_path, account=stranger)
    assert done.returncode == 1 and "Vault login: HTTP 403" in done.stderr
    login = requests.post(f"{server.addr}/v1/auth/kubernetes/login", timeout=10, json={
        "role": openfga.bootstrap_role(NAMESPACE),
        "jwt": reviews.mint(Account(NAMESPACE, openfga.BOOTSTRAP_JOB, str(uuid.uuid4()), (VAULT_AUDIENCE,)))})
    token = login.json()["auth"]["client_token"]
    elsewhere = requests.post(f"{server.addr}/v1/{MOUNT}/data/{NAMESPACE}/openfga/datastore", timeout=10,
                              headers={"X-Vault-Token": token}, json={"data": {"password": "x"}})
    assert elsewhere.status_code == 403
