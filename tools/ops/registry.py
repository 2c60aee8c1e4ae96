"""A small client of the OCI distribution API: list a repository's tags, read a tag's current digest.

Only what the refresh needs, over plain ``urllib``: ``GET /v2/<name>/tags/list`` (following ``Link`` pages) and
``HEAD /v2/<name>/manifests/<tag>`` with the Accept headers of every index and manifest media type, reading
``Docker-Content-Digest`` (a ``GET`` hashed here when a registry leaves the header out). Authentication is the
bearer-token dance Docker Hub, ghcr.io and quay.io use: a 401 names a token ``realm``, ``service`` and
``scope`` in ``WWW-Authenticate``; the token is fetched anonymously (or with ``REGISTRY_USERNAME`` /
``REGISTRY_PASSWORD`` when set) and the request is repeated with it. ``docker.io`` is served by
``registry-1.docker.io``. HTTPS always, except for hosts named insecure (a test registry on 127.0.0.1).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
API_HOSTS = {"docker.io": "registry-1.docker.io"}
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_NEXT = re.compile(r'<([^>]+)>;\s*rel="?next"?')


class RegistryError(RuntimeError):
    """The registry refused or failed a request; the message names the URL and the status."""


class NotFound(RegistryError):
    """The repository or tag does not exist (404)."""


@dataclass
class Registry:
    """One registry host; ``insecure`` speaks plain HTTP (a local test registry only)."""

    host: str
    insecure: bool = False
    timeout: float = 30.0
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def base(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{API_HOSTS.get(self.host, self.host)}"

    def tags(self, name: str) -> list[str]:
        """Every tag of ``name`` (all pages)."""
        found: list[str] = []
        url = f"{self.base}/v2/{name}/tags/list?n=1000"
        while url:
            body, headers = self._request("GET", url, name)
            found.extend(json.loads(body or b"{}").get("tags") or [])
            link = _NEXT.search(headers.get("Link", ""))
            url = urllib.parse.urljoin(self.base, link.group(1)) if link else ""
        return found

    def digest(self, name: str, tag: str) -> str:
        """The digest the registry serves for ``name:tag`` now (the index digest of a multi-platform image)."""
        url = f"{self.base}/v2/{name}/manifests/{tag}"
        _, headers = self._request("HEAD", url, name)
        digest = headers.get("Docker-Content-Digest", "")
        if not digest:
            body, _ = self._request("GET", url, name)
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise RegistryError(f"{url}: Docker-Content-Digest {digest!r} is not a sha256 digest")
        return digest

    def manifest(self, name: str, reference: str) -> dict:
        """The manifest (or index) ``reference`` names; by digest, its bytes must hash to that digest."""
        body, _ = self._request("GET", f"{self.base}/v2/{name}/manifests/{reference}", name)
        self._check(reference, body, f"{name} manifest")
        return json.loads(body)

    def blob(self, name: str, digest: str) -> bytes:
        """A blob by digest, checked against it (registries redirect blobs to storage; the token is not sent there)."""
        body, _ = self._request("GET", f"{self.base}/v2/{name}/blobs/{digest}", name)
        self._check(digest, body, f"{name} blob")
        return body

    @staticmethod
    def _check(reference: str, body: bytes, what: str) -> None:
        if reference.startswith("sha256:") and "sha256:" + hashlib.sha256(body).hexdigest() != reference:
            raise RegistryError(f"{what} {reference}: the registry served bytes with another digest")

    def _request(self, method: str, url: str, name: str) -> tuple[bytes, dict[str, str]]:
        for attempt in (1, 2):
            request = urllib.request.Request(url, method=method, headers={"Accept": ", ".join(MANIFEST_TYPES)})
            if name in self._tokens:
                request.add_unredirected_header("Authorization", f"Bearer {self._tokens[name]}")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return response.read(), dict(response.headers)
            except urllib.error.HTTPError as error:
                if error.code == 401 and attempt == 1:
                    self._tokens[name] = self._token(error.headers.get("WWW-Authenticate", ""), url)
                    continue
                if error.code == 404:
                    raise NotFound(f"{method} {url}: 404 not found") from None
                raise RegistryError(f"{method} {url}: HTTP {error.code} {error.reason}") from None
            except urllib.error.URLError as error:
                raise RegistryError(f"{method} {url}: {error.reason}") from None
        raise RegistryError(f"{method} {url}: still unauthorized with the registry's token")

    def _token(self, challenge: str, url: str) -> str:
        """A bearer token for the challenge's realm, service and scope."""
        if not challenge.lower().startswith("bearer "):
            raise RegistryError(f"{url}: 401 without a bearer challenge ({challenge or 'no WWW-Authenticate'})")
        params = dict(_CHALLENGE.findall(challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"{url}: bearer challenge names no token realm: {challenge}")
        request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(params)}")
        user, password = os.environ.get("REGISTRY_USERNAME", ""), os.environ.get("REGISTRY_PASSWORD", "")
        if user:
            request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, ValueError) as error:
            raise RegistryError(f"{realm}: token request failed: {error}") from None
        token = answer.get("token") or answer.get("access_token")
        if not token:
            raise RegistryError(f"{realm}: the token answer carries no token")
        return token
