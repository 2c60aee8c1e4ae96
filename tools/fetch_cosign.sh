#!/bin/sh
# Puts cosign under .tools/bin for the signature test (tests/mesh/test_cosign_platform_key.py), and installs
# Debian's docker-registry (the local OCI registry the test signs in) when it is missing. Debian 12 has no
# cosign package; Debian 13's (2.5.0) runs here (tools/debian13_unpack.sh).
# Usage: sh tools/fetch_cosign.sh [destination, default .tools]
set -eu
DEST=${1:-.tools}
command -v docker-registry >/dev/null 2>&1 || apt-get install -y -qq docker-registry >/dev/null 2>&1 \
  || echo "docker-registry not installed: the signature test will skip"
[ -x "$DEST/bin/cosign" ] && exit 0
UNPACKED=$(mktemp -d)
trap 'rm -rf "$UNPACKED"' EXIT
sh "$(dirname "$0")/debian13_unpack.sh" cosign "$UNPACKED"
mkdir -p "$DEST/bin"
cp "$UNPACKED/usr/bin/cosign" "$DEST/bin/cosign"
"$DEST/bin/cosign" version 2>&1 | grep -i gitversion | head -1
