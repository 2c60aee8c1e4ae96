"""ClusterImagePolicies generated from the catalog's signer records, one per trusted signer.

Every image the platform runs is in ``platform.lock.yaml`` with its signer (docs/architecture/contracts.md).
This module turns those records into sigstore policy-controller ClusterImagePolicies
(``policy.sigstore.dev/v1beta1``, CRD schema in charts/policy-controller/templates/crds/clusterimagepolicy.yaml):

- ``verifyBy: signer`` (dev, which pulls upstream): an image signed ``keyless`` is checked against the
  issuer and subject its upstream documents; an image signed ``platform`` against the platform key.
- ``verifyBy: platformKey`` (prod, which pulls only mirrored copies): every image against the platform
  key. The mirror (issue 14) verifies the upstream keyless identity before it copies and re-signs, so
  the identity is still enforced, once, where the public Sigstore services are reachable; admission then
  trusts exactly the key that vouches "identity verified, scanned, SBOM attached".

Globs are exact: one per image, ``<registry>/<repository>@<digest>`` as policy-controller matches it
(pkg/apis/glob/glob.go at v0.13.1 matches the glob against go-containerregistry's ``Reference.Name()``,
which for ``repo:tag@digest`` drops the tag, writes Docker Hub as ``index.docker.io`` and adds
``library/`` to its one-part names: pkg/name/digest.go, registry.go, repository.go at v0.20.3). An image
whose digest is not in the catalog matches no policy and meets ``no-match-policy``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

from components.catalog import Catalog, Image
from components.settings import SignatureSettings
# one matcher of images against globs, as policy-controller's, for the program and the gate alike
from policies.image_policies import admission_name, glob_matches

API_VERSION = "policy.sigstore.dev/v1beta1"
KIND = "ClusterImagePolicy"
PLATFORM_POLICY = "platform-key"
KEYLESS_PREFIX = "keyless-"


@dataclass(frozen=True)
class Authority:
    """Who must have signed: a keyless identity, or the platform key (PEM data or a KMS reference)."""

    name: str
    issuer: str = ""
    subject: str = ""
    key_data: str = ""
    key_kms: str = ""

    def as_spec(self) -> dict:
        if self.issuer:
            # No ctlog and no trustRootRef: Fulcio roots and Rekor keys come from Sigstore's public TUF
            # root, and the transparency-log entry is checked offline (pkg/webhook/validator.go,
            # rekorClientAndKeysFromAuthority, v0.13.1).
            return {"name": self.name, "keyless": {"identities": [{"issuer": self.issuer, "subject": self.subject}]}}
        # A key authority without ctlog skips the transparency log (validator.go: IgnoreTlog when no
        # Rekor client or keys): the mirrored signatures need only the registry.
        key = {"data": self.key_data} if self.key_data else {"kms": self.key_kms}
        return {"name": self.name, "key": {**key, "hashAlgorithm": "sha256"}}


@dataclass(frozen=True)
class ImagePolicy:
    """One ClusterImagePolicy: the exact images one authority vouches for."""

    name: str
    authority: Authority
    images: tuple[str, ...]
    """Catalog keys, sorted."""
    globs: tuple[str, ...]
    mode: str

    def spec(self) -> dict:
        return {"images": [{"glob": g} for g in self.globs], "authorities": [self.authority.as_spec()], "mode": self.mode}


def platform_authority(settings: SignatureSettings) -> Authority:
    key = settings.platform_key
    return Authority(name="platform", key_data=key.public_key_pem, key_kms=key.kms)


def authority_for(image: Image, settings: SignatureSettings) -> Authority:
    """The authority this stack checks ``image`` against (module docstring: per ``verifyBy``)."""
    if settings.verify_by == "platformKey" or image.signer.kind == "platform":
        return platform_authority(settings)
    if image.signer.kind != "keyless":
        raise ValueError(f"image '{image.key}' has no signer; platform.lock.yaml must name one")
    return Authority(name="keyless", issuer=image.signer.issuer, subject=image.signer.subject)


def policy_name(authority: Authority) -> str:
    """``platform-key``, or ``keyless-<repo>-<hash of issuer and subject>``: stable, and unique per identity."""
    if not authority.issuer:
        return PLATFORM_POLICY
    repo = re.sub(r"[^a-z0-9]+", "-", authority.subject.lower().removeprefix("https://github.com/").split("/.github/")[0]).strip("-")
    digest = hashlib.sha256(f"{authority.issuer}\n{authority.subject}".encode()).hexdigest()[:8]
    return f"{KEYLESS_PREFIX}{repo[:40].strip('-')}-{digest}"


def image_policies(catalog: Catalog, settings: SignatureSettings, keys: Iterable[str] | None = None) -> tuple[ImagePolicy, ...]:
    """The policies for the catalog images ``keys`` (default: all), as the stack pulls them."""
    grouped: dict[str, tuple[Authority, list[tuple[Image, str]]]] = {}
    chosen = [(catalog.images[k], catalog.image(k).reference) for k in sorted(keys if keys is not None else catalog.images)]
    if keys is None:  # the first-party images the release pipeline pinned (``apps``), from the registry it pushed to
        chosen += [(catalog.apps[k], catalog.app_image(k).reference) for k in sorted(catalog.apps)]
    for image, reference in chosen:
        authority = authority_for(image, settings)
        grouped.setdefault(policy_name(authority), (authority, []))[1].append((image, reference))
    return tuple(
        ImagePolicy(
            name=name, authority=authority, images=tuple(i.key for i, _ in images), mode=settings.mode,
            globs=tuple(sorted(admission_name(reference) for _, reference in images)),
        )
        for name, (authority, images) in sorted(grouped.items())
    )


def policies_covering(reference: str, policies: Iterable[Mapping]) -> list[str]:
    """Names of the ClusterImagePolicy objects (plan inputs) whose globs match ``reference``."""
    found = []
    for policy in policies:
        globs = [g.get("glob", "") for g in (policy.get("spec") or {}).get("images") or []]
        if any(glob_matches(g, reference) for g in globs):
            found.append(policy["metadata"]["name"])
    return found
