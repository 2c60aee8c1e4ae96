"""``python -m tools.mirror``: third-party images into the platform registry (docs/runbooks/supply-chain.md).

  run    mirror every catalog image into the stack's registry: upstream signature checked, scanned,
         SBOM attested and signed with the platform key; writes the report (exit 1 unless all are signed)
  check  refuse a rendered stack (make render) whose images the report does not list as signed with
         the key the stack's admission trusts (exit 1 with the reasons)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components import catalog, settings
from tools.images.release import ReleaseError, Signing
from tools.mirror import promotion
from tools.mirror.items import items_from_catalog
from tools.mirror.pipeline import TRIVY, MirrorConfig, mirror_all
from tools.mirror.report import SIGNED, Report, key_fingerprint
from tools.render import stack_config


class StackError(ValueError):
    """The stack cannot be mirrored for: the message says what to change."""


def stack_target(stack: str) -> tuple[str, str, str]:
    """(registry, trusted public key PEM, trusted KMS reference) of a stack that pulls mirrored images."""
    parsed = settings.parse(stack_config(stack), stack)
    if parsed.registry == "upstream":
        raise StackError(f"stack {stack} pulls from upstream (somaagenthub:registry): there is no platform registry to mirror into")
    signatures = parsed.mesh.signatures
    if signatures is None or signatures.verify_by != "platformKey":
        raise StackError(f"stack {stack}: mesh.signatures.verifyBy is not platformKey, so admission would not check the "
                         "mirror's signatures; set it before mirroring for this stack")
    return parsed.registry, signatures.platform_key.public_key_pem, signatures.platform_key.kms


def signing_matches_stack(public_key: Path, key: str, trusted_pem: str, trusted_kms: str) -> None:
    """Sign only with the key the stack's admission trusts: anything else produces images prod refuses."""
    if trusted_kms:
        if key != trusted_kms:
            raise StackError(f"the stack trusts the KMS key {trusted_kms}; --key is {key}")
        return
    ours, trusted = key_fingerprint(public_key.read_text(encoding="utf-8")), key_fingerprint(trusted_pem)
    if ours != trusted:
        raise StackError(f"--public-key {public_key} is {ours}, but the stack's admission trusts {trusted} "
                         "(mesh.signatures.platformKey.publicKeyPem): put the mirror key's public half there first")


def run(args) -> int:
    try:
        registry, trusted_pem, trusted_kms = stack_target(args.stack)
        signing_matches_stack(Path(args.public_key), args.key, trusted_pem, trusted_kms)
        items = items_from_catalog(catalog.load(), frozenset(args.only or ()))
        config = MirrorConfig(registry=registry, work=Path(args.work),
                              signing=Signing(key=args.key, public_key=args.public_key, insecure_registry=args.insecure_registry),
                              scanner=args.scanner, insecure_upstream=args.insecure_upstream)
    except (StackError, ReleaseError, KeyError, ValueError) as error:
        print(f"mirror: {error}", file=sys.stderr)
        return 2
    report = mirror_all(items, config, Path(args.report))
    print(f"{args.report}: {report.summary()}")
    return 0 if all(report.entries[i.key].state == SIGNED for i in items) else 1


def check(args) -> int:
    try:
        registry, _, _ = stack_target(args.stack)
        build = Path(args.build or f"build/{args.stack}")
        images = promotion.rendered_images(build)
    except (StackError, FileNotFoundError) as error:
        print(f"mirror check: {error}", file=sys.stderr)
        return 2
    found = promotion.problems(images, Report.load(Path(args.report)), registry, promotion.admission_keys(build),
                               catalog.load().apps.values())
    for line in found:
        print(f"REFUSED {line}")
    print(f"{args.stack}: {len(images)} images, {'refused' if found else 'every one mirrored, scanned and signed'}")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.mirror", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="mirror, verify, scan, attest and sign")
    r.add_argument("--stack", required=True)
    r.add_argument("--key", required=True, help="the platform signing key (cosign key file or KMS URI)")
    r.add_argument("--public-key", required=True, help="its public half; must be the stack's mesh.signatures.platformKey")
    r.add_argument("--only", action="append", help="a catalog image key (repeatable; default: every image)")
    r.add_argument("--scanner", default=TRIVY, help="scanner command with {layout} and {output} (default: %(default)s)")
    r.add_argument("--report", default="build/mirror/report.json")
    r.add_argument("--work", default="build/mirror/work")
    r.add_argument("--insecure-registry", action="store_true", help="the platform registry speaks plain HTTP (127.0.0.1)")
    r.add_argument("--insecure-upstream", action="store_true", help="the upstream registry speaks plain HTTP (tests)")
    c = sub.add_parser("check", help="refuse a rendered stack with images the mirror did not sign")
    c.add_argument("--stack", required=True)
    c.add_argument("--report", default="build/mirror/report.json")
    c.add_argument("--build", help="the rendered stack (default build/<stack>)")
    args = parser.parse_args(argv)
    return run(args) if args.command == "run" else check(args)


if __name__ == "__main__":
    sys.exit(main())
