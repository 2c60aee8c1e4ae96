"""signed-images: admission verifies the signature of every image the plan runs, against the signer the
catalog names.

A stack rule over the plan: for every image reference a pod, pod template, operator-started pod, chart
value or custom resource names (the same references digest-pinned-images judges), exactly one sigstore
ClusterImagePolicy of the plan must cover it (policy-controller requires every matching policy to pass,
and an image no policy matches meets ``no-match-policy``), and that policy must trust exactly the
signer ``platform.lock.yaml`` records for the image's digest: its keyless issuer and subject, or the
platform key. With ``verifyBy: platformKey`` (prod, which runs only mirrored copies) every image is
checked against the platform key, which the mirror applies after verifying the upstream identity.
An image whose digest is not in the catalog, or whose entry names no complete signer, fails: nobody
can say who must have signed it. Policies must run in the stack's ``mode``, and every namespace of
the plan must carry ``policy.sigstore.dev/include: "true"`` unless the config exempts it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..catalog import CatalogImage, catalog_or_problem
from ..image_policies import glob_matches
from ..images import ImageRef
from ..model import Finding, ResourceView, Violation, dig
from ..rule import Rule, RuleConfig, Severity
from .digest_pinned_images import image_references

POLICY_KINDS = ("kubernetes:policy.sigstore.dev/v1beta1:ClusterImagePolicy", "kubernetes:policy.sigstore.dev/v1alpha1:ClusterImagePolicy")
NAMESPACE = "kubernetes:core/v1:Namespace"
INCLUDE_LABEL = "policy.sigstore.dev/include"


def check(resources: Sequence[ResourceView], config: RuleConfig) -> Iterator[Finding]:
    if config.get("verifyBy", "none") == "none":
        return  # this stack verifies no signature at admission (no verifier deployed): nothing to hold it to
    catalog, problem = catalog_or_problem(config)
    if catalog is None:
        yield Violation(problem)
        return
    policies = [r for r in resources if r.type in POLICY_KINDS]
    exempt = set(config.get("exemptNamespaces", []))
    yield from _namespaces(resources, exempt)
    yield from _modes(policies, str(config.get("mode", "enforce")))
    for resource in resources:
        if resource.type in POLICY_KINDS:
            continue
        for where, reference in image_references(resource):
            if not isinstance(reference, str) or not reference:
                continue  # unknown or empty: digest-pinned-images reports it
            problem = _coverage(reference, catalog.images_by_digest, policies, config)
            if problem:
                yield Violation(f"{where}: image '{reference}' {problem}", subject=resource)


def _namespaces(resources: Sequence[ResourceView], exempt: set[str]) -> Iterator[Finding]:
    for resource in resources:
        if resource.type != NAMESPACE or resource.object_name in exempt:
            continue
        labels = resource.metadata.get("labels") or {}
        if not isinstance(labels, dict) or labels.get(INCLUDE_LABEL) != "true":
            yield Violation(f"namespace '{resource.object_name}' is not labelled {INCLUDE_LABEL}: \"true\", so admission "
                            "verifies no image of its pods (exempt it in the config with its reason, or label it)", subject=resource)


def _modes(policies: Sequence[ResourceView], mode: str) -> Iterator[Finding]:
    for policy in policies:
        actual = dig(policy.props, "spec", "mode") or "enforce"
        if actual != mode and mode == "enforce":  # a warning stack may still enforce a policy
            yield Violation(f"ClusterImagePolicy '{policy.object_name}' runs in mode {actual!r}; this stack needs {mode!r}", subject=policy)


def _coverage(reference: str, by_digest: dict[str, tuple[CatalogImage, ...]], policies: Sequence[ResourceView],
              config: RuleConfig) -> str | None:
    ref = ImageRef.parse(reference)
    entries = [e for e in by_digest.get(ref.digest, ()) if ref.name.endswith(f"/{e.repository}")]
    if not entries:
        return "is not in platform.lock.yaml, so its signer is unknown and no policy may vouch for it"
    entry = entries[0]
    if entry.signer is None or not entry.signer.is_complete:
        return f"has no complete signer in platform.lock.yaml (images.{entry.key}): nobody can say who must have signed it"
    covering = [p for p in policies if any(glob_matches(str(g.get("glob", "")), reference)
                                           for g in (dig(p.props, "spec", "images") or []) if isinstance(g, dict))]
    if len(covering) != 1:
        names = ", ".join(p.object_name for p in covering) or "none"
        return f"must be covered by exactly one ClusterImagePolicy, found {len(covering)} ({names})"
    expected = _expected(entry, config)
    authorities = dig(covering[0].props, "spec", "authorities") or []
    if len(authorities) != 1 or _authority(authorities[0]) != expected:
        return (f"is covered by ClusterImagePolicy '{covering[0].object_name}', which must trust exactly "
                f"{_describe(expected)} (images.{entry.key} signer {entry.signer.kind})")
    return None


def _expected(entry: CatalogImage, config: RuleConfig) -> tuple[str, ...]:
    if config.get("verifyBy") == "platformKey" or entry.signer.kind == "platform":
        return ("key", str(config.get("platformKey", "")).strip())
    return ("keyless", entry.signer.issuer, entry.signer.subject)


def _authority(authority: Any) -> tuple[str, ...]:
    if not isinstance(authority, dict):
        return ()
    key = authority.get("key")
    if isinstance(key, dict) and len({"data", "kms", "secretRef"} & key.keys()) == 1 and not authority.get("keyless"):
        return ("key", str(key.get("data") or key.get("kms") or "").strip()) if "secretRef" not in key else ("secretRef",)
    keyless = authority.get("keyless")
    identities = keyless.get("identities") if isinstance(keyless, dict) else None
    if not isinstance(identities, list) or len(identities) != 1 or not isinstance(identities[0], dict):
        return ()
    identity = identities[0]
    if set(identity) != {"issuer", "subject"} or keyless.get("url") not in (None, "https://fulcio.sigstore.dev"):
        return ()
    return ("keyless", str(identity["issuer"]), str(identity["subject"]))


def _describe(expected: tuple[str, ...]) -> str:
    if expected[0] == "key":
        return "the platform key (one key authority with the platformKey of this stack's config)"
    return f"one keyless identity, issuer {expected[1]} and subject {expected[2]}"


RULE = Rule(
    name="signed-images",
    description=(
        "Every image the plan runs is covered by exactly one sigstore ClusterImagePolicy, which trusts exactly the "
        "signer platform.lock.yaml names for its digest (the keyless issuer and subject, or the platform key; in a "
        "stack that verifies by the platform key, the platform key for all); images without a known signer fail; "
        "policies enforce where the stack enforces and every namespace not exempted is labelled for verification."
    ),
    severity=Severity.CRITICAL,
    remediation=(
        "Add the image to platform.lock.yaml with its signer and let components/mesh/signatures generate the policies "
        "(never write a ClusterImagePolicy by hand); label the namespace through the kit's PlatformNamespace, or list it "
        "in mesh.signatures.exemptNamespaces and this rule's exemptNamespaces with its reason."
    ),
    check_stack=check,
    config_schema={
        "catalogPath": {"type": "string", "default": "platform.lock.yaml",
                        "description": "Catalog file; relative paths are relative to the repository root."},
        "verifyBy": {"type": "string", "enum": ["none", "signer", "platformKey"], "default": "none",
                     "description": "signer: each image by its catalog signer; platformKey: every image by the platform key; "
                                    "none: the stack deploys no verifier (a mandatory stack's settings refuse that)."},
        "platformKey": {"type": "string", "default": "",
                        "description": "The platform's public key (PEM) or KMS reference, as mesh.signatures.platformKey sets it."},
        "mode": {"type": "string", "enum": ["enforce", "warn"], "default": "enforce",
                 "description": "enforce: every ClusterImagePolicy must enforce; warn: policies may only warn."},
        "exemptNamespaces": {"type": "array", "items": {"type": "string"}, "default": [],
                             "description": "Namespaces left unverified, as mesh.signatures.exemptNamespaces names them."},
    },
)
