#!/bin/sh
# Puts cosign under .tools/bin for the signature test (tests/mesh/test_cosign_platform_key.py), and installs
# Debian's docker-registry (the local OCI registry the test signs in) when it is missing. Debian 12 has no
# cosign package; Debian 13's (2.5.0) runs here. It is fetched with a private apt state (the machine's apt
# sources and dpkg database are left alone) and only unpacked.
# Usage: sh tools/fetch_cosign.sh [destination, default .tools]
set -eu
DEST=${1:-.tools}
command -v docker-registry >/dev/null 2>&1 || apt-get install -y -qq docker-registry >/dev/null 2>&1 \
  || echo "docker-registry not installed: the signature test will skip"
[ -x "$DEST/bin/cosign" ] && exit 0
STATE=$(mktemp -d)
trap 'rm -rf "$STATE"' EXIT
mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial" "$DEST/bin"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$STATE/sources.list"
APT="-o Dir::Etc::SourceList=$STATE/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$STATE/lists
     -o Dir::Cache=$STATE/cache -o Dir::State::Status=/var/lib/dpkg/status -o APT::Sandbox::User=root -qq"
# shellcheck disable=SC2086
apt-get $APT update
# shellcheck disable=SC2086
(cd "$STATE" && apt-get $APT download cosign)
dpkg-deb -x "$STATE"/cosign_*.deb "$STATE/unpacked"
cp "$STATE/unpacked/usr/bin/cosign" "$DEST/bin/cosign"
"$DEST/bin/cosign" version 2>&1 | grep -i gitversion | head -1
