"""``python -m tools.images``: the release pipeline's commands (docs/apps.md).

  build    build every service under apps/ (or --app-dir folders) into build/images/<app>/
  gate     fail on critical findings in scanner reports (Trivy JSON), honouring dated waivers
  release  push the built images, sign, attest the SBOM, verify, and pin them in platform.lock.yaml
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.images import apps as app_folders
from tools.images.build import BuildError, build, source_date_epoch


def _apps(args) -> list[app_folders.App]:
    if args.app_dir:
        return [app_folders.read_app(Path(d)) for d in args.app_dir]
    found, libraries = app_folders.discover()
    for library in libraries:
        print(f"skipped {library.relative_to(app_folders.PROJECT_ROOT)}: a library (no __main__.py, no [tool.soma.image] command)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.images", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build the images")
    b.add_argument("--app-dir", action="append", help="an app folder (default: every service under apps/)")
    b.add_argument("--out", default="build/images")
    g = sub.add_parser("gate", help="the vulnerability gate over scanner reports")
    g.add_argument("reports", nargs="+", help="Trivy JSON reports (trivy image --format json)")
    g.add_argument("--waivers", default="tools/images/waivers.yaml")
    r = sub.add_parser("release", help="push, sign, attest, verify, pin")
    r.add_argument("--out", default="build/images")
    r.add_argument("--registry", required=True, help="host[:port]/path the images are pushed under")
    r.add_argument("--key", help="cosign private key (key-based signing); without it cosign signs keyless")
    r.add_argument("--public-key", help="cosign public key that verification must accept (with --key)")
    r.add_argument("--identity", help="keyless: the certificate identity verification must accept")
    r.add_argument("--issuer", help="keyless: the OIDC issuer verification must accept")
    r.add_argument("--insecure-registry", action="store_true", help="plain HTTP (a registry on 127.0.0.1)")
    r.add_argument("--lock", default="platform.lock.yaml")
    args = parser.parse_args(argv)

    if args.command == "build":
        try:
            selected = _apps(args)
        except app_folders.AppError as error:
            print(error, file=sys.stderr)
            return 1
        if not selected:
            print("no services under apps/ (a folder with pyproject.toml and requirements.lock): nothing to build")
            return 0
        epoch = source_date_epoch()
        for app in selected:
            try:
                result = build(app, Path(args.out), epoch)
            except BuildError as error:
                print(error, file=sys.stderr)
                return 1
            print(f"{app.name} {app.version}: {result.digest}  {result.compressed_size / 1e6:.1f} MB compressed, "
                  f"root filesystem {result.rootfs_size / 1e6:.1f} MB, {result.seconds:.0f} s (SOURCE_DATE_EPOCH={epoch})")
        return 0
    if args.command == "gate":
        from tools.images import vulngate
        return vulngate.main(args.reports, Path(args.waivers))
    from tools.images import release
    return release.main(args)


if __name__ == "__main__":
    sys.exit(main())
