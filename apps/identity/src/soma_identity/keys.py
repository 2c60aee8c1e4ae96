"""JWT signing through Vault's transit engine: the private key never leaves Vault.

identity builds the JWS signing input (``base64url(header).base64url(payload)``) and asks transit to sign it
with one *version* of a non-exportable key (``ecdsa-p256`` for ES256, ``rsa-2048`` for RS256). For ECDSA,
``marshaling_algorithm=jws`` makes transit return the raw ``r||s`` signature base64url-encoded, exactly
what JWS wants (the default is ASN.1 DER); RSA PKCS#1 v1.5 signatures come back in standard base64 and are
re-encoded. Transit prefixes the signature with ``vault:v<version>:``; the JWS ``kid`` names the same version.

Rotation without downtime, three steps in time:

1. ``rotate`` adds a version. The JWKS publishes every version from ``min_decryption_version`` (transit
   uses it as the oldest version allowed to *verify*) up to the latest — the new one immediately.
2. A version signs only once it has been published for ``key_publish_delay_seconds`` (longer than any JWKS
   cache, Envoy's included), so no verifier meets a ``kid`` it has not fetched yet.
3. ``retire`` raises ``min_decryption_version`` past every version whose last token has expired (it stopped
   signing ``publish_delay`` after its successor was created; its tokens live at most the access-token TTL
   plus clock skew). The version leaves the JWKS, transit refuses to verify with it, and tokens it signed are
   rejected everywhere. ``trim`` then deletes the retired key material for good.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import hvac
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

KEY_TYPES = {"ES256": "ecdsa-p256", "RS256": "rsa-2048"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_uint(value: int, length: int | None = None) -> str:
    length = length or (value.bit_length() + 7) // 8
    return b64url(value.to_bytes(length, "big"))


def parse_vault_time(text: str) -> float:
    """Transit's ``creation_time`` (RFC 3339, nanoseconds) as a Unix timestamp."""
    text = text.replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.fromisoformat(text).astimezone(timezone.utc).timestamp()


@dataclass(frozen=True)
class KeyVersion:
    version: int
    created: float
    public_key_pem: str


@dataclass(frozen=True)
class KeyRing:
    """What transit says about the key: its versions still allowed to verify, oldest first."""

    name: str
    versions: tuple[KeyVersion, ...]
    min_decryption_version: int
    latest_version: int

    def signing_version(self, now: float, publish_delay: float) -> KeyVersion:
        """The newest version published for at least ``publish_delay``; the oldest one if none is (first key)."""
        ready = [v for v in self.versions if v.created + publish_delay <= now]
        return ready[-1] if ready else self.versions[0]

    def retirable_below(self, now: float, publish_delay: float, grace: float) -> int:
        """The lowest version that must stay verifiable at ``now`` (the new ``min_decryption_version``)."""
        keep = self.min_decryption_version
        for older, newer in zip(self.versions, self.versions[1:]):
            stopped_signing = newer.created + publish_delay
            if stopped_signing + grace <= now:
                keep = newer.version
        return keep


class TransitSigner:
    """Signs JWTs with a transit key and publishes its public versions as a JWKS."""

    def __init__(self, client: hvac.Client, *, key_name: str, algorithm: str, mount: str = "transit",
                 publish_delay: float = 0, cache_seconds: float = 30, clock=time.time):
        if algorithm not in KEY_TYPES:
            raise ValueError(f"signing algorithm {algorithm!r}: use one of {sorted(KEY_TYPES)}")
        self.client = client
        self.key_name = key_name
        self.algorithm = algorithm
        self.mount = mount
        self.publish_delay = publish_delay
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cached: tuple[float, KeyRing] | None = None
        self._lock = threading.Lock()

    # -- the key in Vault ------------------------------------------------------------------------------
    def ensure_key(self, auto_rotate_period: str | None = None) -> None:
        """Create the key (non-exportable, no plaintext backup) unless it exists with the right type."""
        transit = self.client.secrets.transit
        try:
            existing = transit.read_key(self.key_name, mount_point=self.mount)["data"]
        except hvac.exceptions.InvalidPath:
            transit.create_key(self.key_name, key_type=KEY_TYPES[self.algorithm], exportable=False,
                               allow_plaintext_backup=False, mount_point=self.mount,
                               auto_rotate_period=auto_rotate_period)
            self.invalidate()
            return
        if existing["type"] != KEY_TYPES[self.algorithm]:
            raise RuntimeError(f"transit key {self.key_name!r} is {existing['type']}, "
                               f"but {self.algorithm} needs {KEY_TYPES[self.algorithm]}")
        if existing.get("exportable"):
            raise RuntimeError(f"transit key {self.key_name!r} is exportable: its private key could leave Vault")

    def rotate(self) -> int:
        self.client.secrets.transit.rotate_key(self.key_name, mount_point=self.mount)
        self.invalidate()
        return self.keyring(fresh=True).latest_version

    def retire(self, grace: float, *, trim: bool = False, now: float | None = None) -> int:
        """Stop verifying versions whose tokens have all expired; returns the new minimum version."""
        ring = self.keyring(fresh=True)
        keep = ring.retirable_below(self.clock() if now is None else now, self.publish_delay, grace)
        transit = self.client.secrets.transit
        if keep > ring.min_decryption_version:
            # min_encryption_version: a retired version may not sign either (and trim requires it set)
            # (the API directly: hvac's client-side check wrongly demands min_encryption > min_decryption)
            self.client.adapter.post(f"/v1/{self.mount}/keys/{self.key_name}/config",
                                     json={"min_decryption_version": keep, "min_encryption_version": keep})
        if trim and keep > 1:
            transit.trim_key(self.key_name, min_version=keep, mount_point=self.mount)
        self.invalidate()
        return keep

    def invalidate(self) -> None:
        with self._lock:
            self._cached = None

    def keyring(self, fresh: bool = False) -> KeyRing:
        with self._lock:
            if not fresh and self._cached and self.clock() - self._cached[0] < self.cache_seconds:
                return self._cached[1]
        data = self.client.secrets.transit.read_key(self.key_name, mount_point=self.mount)["data"]
        minimum = max(int(data.get("min_decryption_version") or 1), int(data.get("min_available_version") or 0))
        versions = tuple(sorted(
            (KeyVersion(int(n), parse_vault_time(v["creation_time"]), v["public_key"])
             for n, v in data["keys"].items() if int(n) >= minimum),
            key=lambda v: v.version))
        ring = KeyRing(self.key_name, versions, minimum, int(data["latest_version"]))
        with self._lock:
            self._cached = (self.clock(), ring)
        return ring

    # -- JWS -------------------------------------------------------------------------------------------
    def kid(self, version: int) -> str:
        return f"{self.key_name}-v{version}"

    def sign(self, claims: dict[str, Any]) -> str:
        version = self.keyring().signing_version(self.clock(), self.publish_delay)
        header = {"alg": self.algorithm, "typ": "JWT", "kid": self.kid(version.version)}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(claims, separators=(",", ":")).encode()))
        options: dict[str, Any] = {"hash_algorithm": "sha2-256"}
        if self.algorithm == "ES256":
            options["marshaling_algorithm"] = "jws"  # raw r||s, base64url: the JWS encoding
        else:
            options["signature_algorithm"] = "pkcs1v15"  # RS256 = RSASSA-PKCS1-v1_5 with SHA-256
        response = self.client.secrets.transit.sign_data(
            self.key_name, hash_input=base64.b64encode(signing_input.encode()).decode(),
            key_version=version.version, mount_point=self.mount, **options)
        prefix, signed_version, signature = response["data"]["signature"].split(":", 2)
        if prefix != "vault" or signed_version != f"v{version.version}":
            raise RuntimeError(f"transit signed with {signed_version}, asked for v{version.version}")
        if self.algorithm == "RS256":
            signature = b64url(base64.b64decode(signature))
        return f"{signing_input}.{signature}"

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.jwk(v) for v in self.keyring().versions]}

    def jwk(self, version: KeyVersion) -> dict[str, str]:
        public = load_pem_public_key(version.public_key_pem.encode())
        base = {"kid": self.kid(version.version), "use": "sig", "alg": self.algorithm}
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            return {**base, "kty": "EC", "crv": "P-256", "x": b64url_uint(numbers.x, 32), "y": b64url_uint(numbers.y, 32)}
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            return {**base, "kty": "RSA", "n": b64url_uint(numbers.n), "e": b64url_uint(numbers.e)}
        raise RuntimeError(f"transit key {self.key_name!r} has an unsupported public key type")
