"""Every image a stack will run, verified in the registry it pulls from against the signer admission trusts.

The gate proves the plan pins images by digest; this proves each digest carries a signature that the
stack's admission (sigstore policy-controller, ``mesh.signatures``) will accept, before a pod is ever
refused: with ``verifyBy: platformKey`` every image must verify with the stack's platform key; with
``verifyBy: signer`` each image verifies against its catalog signer (the upstream keyless identity, or the
platform key for ``kind: platform``). The check itself is tools/images/release.py's ``verify``: the
manifest the registry serves must hash to the digest, and cosign must accept the signature.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from components import catalog as catalog_module
from components.settings import SignatureSettings
from tools.images import release
from tools.images.release import ReleaseError, Trust

Verify = Callable[[str, Trust], None]


@dataclass(frozen=True)
class Verified:
    image: str
    trusted: str


def _catalog_entry(name: str, digest: str, lock: catalog_module.Catalog) -> catalog_module.Image | None:
    for app in lock.apps.values():
        if app.ref.name == name and app.digest == digest:
            return app
    for image in lock.images.values():
        if image.digest == digest and image.pulled_from(lock.registry).name == name:
            return image
    return None


def trust_for(image: catalog_module.Image, signatures: SignatureSettings, platform_key_file: str,
              insecure_registry: bool) -> Trust:
    """What admission will check this image against (see the module's docstring)."""
    upstream = Trust.upstream_of(image.signer, insecure_registry)
    if signatures.verify_by == "platformKey" or upstream is None:
        key = signatures.platform_key.kms or platform_key_file
        return Trust(public_key=key, insecure_registry=insecure_registry)
    return upstream


def check(images: Iterable[tuple[str, str]], lock: catalog_module.Catalog, signatures: SignatureSettings | None,
          insecure_registry: bool = False, verify: Verify = release.verify) -> tuple[list[Verified], list[str]]:
    """(what verified, why the others do not): every ``(name, digest)`` must be a catalog entry as the stack
    pulls it, and its signature must verify against :func:`trust_for`."""
    if signatures is None:
        return [], ["the stack has no mesh.signatures: admission verifies nothing, so a promotion cannot say "
                    "what it would accept"]
    verified, problems = [], []
    with tempfile.TemporaryDirectory() as scratch:
        key_file = Path(scratch) / "platform.pub"
        key_file.write_text(signatures.platform_key.public_key_pem or "", encoding="utf-8")
        for name, digest in sorted(images):
            reference = f"{name}@{digest}"
            entry = _catalog_entry(name, digest, lock)
            if entry is None:
                problems.append(f"{reference}: not an image of the catalog as this stack pulls it (registry {lock.registry})")
                continue
            trust = trust_for(entry, signatures, str(key_file), insecure_registry)
            try:
                verify(reference, trust)
            except ReleaseError as error:
                why = str(error).removeprefix(f"{reference}: ").strip()
                problems.append(f"{reference} ({entry.key}): signature against {_describe(trust, signatures)} "
                                f"does not verify: {why[-400:]}")
                continue
            verified.append(Verified(reference, _describe(trust, signatures)))
    return verified, problems


def _describe(trust: Trust, signatures: SignatureSettings) -> str:
    if trust.public_key:
        return f"the platform key ({signatures.platform_key.kms or 'mesh.signatures.platformKey'})"
    return f"keyless {trust.identity} (issuer {trust.issuer})"
