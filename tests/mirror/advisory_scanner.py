"""A scanner for the mirror tests: Trivy's report format over the packages the image really contains.

Trivy itself cannot run here (no binary, no vulnerability database offline), so the tests hand the mirror
this command instead. It reads the fetched layout's package databases (tools/mirror/image_sbom.py) and
matches them against a small advisory list the test writes, then writes a Trivy JSON report (SchemaVersion
2), so the mirror's scan step, the report parsing and the waiver rules run exactly as with Trivy.

Usage: python advisory_scanner.py --advisories FILE --layout DIR --output FILE
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.mirror.image_sbom import image_sbom  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--advisories", required=True)
    parser.add_argument("--layout", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    advisories = json.loads(Path(args.advisories).read_text())
    layout = Path(args.layout)
    top = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    document = image_sbom(layout, name="scanned", version="0", digest=top)
    found = []
    for component in document.get("components", []):
        for advisory in advisories:
            if (component.get("name"), component.get("version")) == (advisory["package"], advisory["version"]):
                found.append({"VulnerabilityID": advisory["id"], "PkgName": advisory["package"],
                              "InstalledVersion": advisory["version"], "FixedVersion": advisory.get("fixed", ""),
                              "Severity": advisory["severity"]})
    result = {"Target": args.layout, "Class": "os-pkgs", "Type": "debian"}
    if found:
        result["Vulnerabilities"] = found
    Path(args.output).write_text(json.dumps({"SchemaVersion": 2, "ArtifactName": args.layout, "Results": [result]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
