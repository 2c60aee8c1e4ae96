"""Write the platform's authorization model to OpenFGA, idempotently, and hand the IDs to Vault.

Run by the ``openfga-bootstrap`` Job (components/governance/openfga/__init__.py) with the Python of a
catalog image, so it uses the standard library only. Each run:

1. waits for OpenFGA's HTTP API (``GET /healthz``);
2. finds the store named ``FGA_STORE_NAME`` (``GET /stores``, every page) and creates it only if there
   is none; two stores with that name is an error, not a guess;
3. reads the store's latest authorization model (``GET /stores/{id}/authorization-models``, newest
   first) and writes ``FGA_MODEL_FILE`` (the JSON ``fga model transform`` makes of model.fga) only if
   it differs: OpenFGA models are immutable, so an unchanged model keeps its ID;
4. logs into Vault with the Job's ServiceAccount token (Kubernetes auth, role ``VAULT_ROLE``) and
   writes ``store-id``, ``model-id``, ``store-name`` and ``api-url`` to ``VAULT_KV_PATH`` under the KV
   v2 mount ``VAULT_KV_MOUNT``, only if they differ from what is there, so that later phases read them
   with External Secrets (``SecretGrants.share``).

It prints one JSON line saying what it did. Exit status 0 means the store, the model and Vault agree.
"""
from __future__ import annotations

import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

MODEL_FIELDS = ("schema_version", "type_definitions", "conditions")
"""What makes two authorization models the same (the ID and creation time do not)."""


class BootstrapError(RuntimeError):
    pass


def call(method: str, url: str, body: dict | None = None, headers: dict | None = None,
         context: ssl.SSLContext | None = None, timeout: float = 10) -> tuple[int, dict]:
    """One JSON request; returns (status, body). HTTP errors come back as their status and body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            text = response.read().decode() or "{}"
            return response.status, json.loads(text)
    except urllib.error.HTTPError as err:
        text = err.read().decode() or "{}"
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, {"message": text}


def expect(status: int, body: dict, what: str, ok: tuple[int, ...] = (200, 201)) -> dict:
    if status not in ok:
        raise BootstrapError(f"{what}: HTTP {status} {json.dumps(body)[:500]}")
    return body


def wait_until_ready(api: str, deadline_seconds: float) -> None:
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            status, _ = call("GET", f"{api}/healthz", timeout=5)
            if status == 200:
                return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise BootstrapError(f"OpenFGA at {api} did not answer /healthz within {deadline_seconds:.0f}s")
        time.sleep(2)


def find_store(api: str, name: str) -> str | None:
    """The ID of the store named ``name``, following every page; None if there is none."""
    found: list[str] = []
    token = ""
    while True:
        query = urllib.parse.urlencode({"page_size": 100, **({"continuation_token": token} if token else {})})
        body = expect(*call("GET", f"{api}/stores?{query}"), "list stores")
        found += [store["id"] for store in body.get("stores") or [] if store.get("name") == name]
        token = body.get("continuation_token") or ""
        if not token:
            break
    if len(found) > 1:
        raise BootstrapError(f"{len(found)} stores are named {name!r} ({', '.join(found)}): delete the extra ones first")
    return found[0] if found else None


def comparable(model: dict) -> dict:
    """The parts of a model that define it, with empty values dropped (the server may add or omit them)."""
    def prune(value):
        if isinstance(value, dict):
            pruned = {k: prune(v) for k, v in value.items()}
            return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
        if isinstance(value, list):
            return [prune(v) for v in value]
        return value
    return prune({k: model.get(k) for k in MODEL_FIELDS})


def latest_model(api: str, store_id: str) -> dict | None:
    body = expect(*call("GET", f"{api}/stores/{store_id}/authorization-models?page_size=1"), "read authorization models")
    models = body.get("authorization_models") or []
    return models[0] if models else None


def ensure_model(api: str, store_id: str, wanted: dict) -> tuple[str, bool]:
    """(model ID, whether it was written): the latest model if it is ``wanted``, else a new one."""
    latest = latest_model(api, store_id)
    if latest is not None and comparable(latest) == comparable(wanted):
        return latest["id"], False
    body = {k: wanted[k] for k in MODEL_FIELDS if k in wanted}
    written = expect(*call("POST", f"{api}/stores/{store_id}/authorization-models", body), "write authorization model")
    return written["authorization_model_id"], True


def vault_context(ca_file: str) -> ssl.SSLContext | None:
    return ssl.create_default_context(cafile=ca_file) if ca_file else None


def vault_login(addr: str, auth_path: str, role: str, jwt: str, context: ssl.SSLContext | None) -> str:
    body = expect(*call("POST", f"{addr}/v1/auth/{auth_path}/login", {"role": role, "jwt": jwt}, context=context), "Vault login")
    return body["auth"]["client_token"]


def publish(addr: str, token: str, mount: str, path: str, values: dict, context: ssl.SSLContext | None) -> bool:
    """Write ``values`` to the KV v2 secret unless it already holds exactly them; True if written."""
    headers = {"X-Vault-Token": token}
    status, body = call("GET", f"{addr}/v1/{mount}/data/{path}", headers=headers, context=context)
    if status == 200 and (body.get("data") or {}).get("data") == values:
        return False
    if status not in (200, 404):
        expect(status, body, f"read {mount}/{path}")
    expect(*call("POST", f"{addr}/v1/{mount}/data/{path}", {"data": values}, headers=headers, context=context), f"write {mount}/{path}")
    return True


def run(env: dict[str, str]) -> dict:
    api = env["FGA_API_URL"].rstrip("/")
    name = env["FGA_STORE_NAME"]
    with open(env["FGA_MODEL_FILE"], encoding="utf-8") as handle:
        wanted = json.load(handle)
    wait_until_ready(api, float(env.get("FGA_WAIT_SECONDS", "300")))
    store_id = find_store(api, name)
    created = store_id is None
    if created:
        store_id = expect(*call("POST", f"{api}/stores", {"name": name}), "create store")["id"]
    model_id, wrote = ensure_model(api, store_id, wanted)
    result = {"store": name, "store_id": store_id, "model_id": model_id, "store_created": created, "model_written": wrote}
    if env.get("VAULT_ADDR"):
        context = vault_context(env.get("VAULT_CACERT", ""))
        with open(env["VAULT_JWT_FILE"], encoding="utf-8") as handle:
            jwt = handle.read().strip()
        token = vault_login(env["VAULT_ADDR"].rstrip("/"), env["VAULT_AUTH_PATH"], env["VAULT_ROLE"], jwt, context)
        values = {"store-id": store_id, "model-id": model_id, "store-name": name, "api-url": api}
        result["vault_written"] = publish(env["VAULT_ADDR"].rstrip("/"), token, env["VAULT_KV_MOUNT"], env["VAULT_KV_PATH"], values, context)
    return result


def main() -> int:
    try:
        print(json.dumps(run(dict(os.environ)), sort_keys=True))
    except (BootstrapError, KeyError, OSError, ValueError) as err:
        print(f"openfga-bootstrap: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
