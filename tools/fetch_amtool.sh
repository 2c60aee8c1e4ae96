#!/bin/sh
# Puts Alertmanager's amtool (and the server, as .tools/bin/alertmanager) under .tools/bin for the tests
# that check the rendered Alertmanager configuration (tests/core/test_observability_ha.py). Debian 12's prometheus-alertmanager is 0.25, which
# does not know webhook url_file; Debian 13's (0.28.1) does and runs here. It is fetched with a private
# apt state (the machine's apt sources and dpkg database are left alone) and only unpacked.
# Usage: sh tools/fetch_amtool.sh [destination, default .tools]
set -eu
DEST=${1:-.tools}
[ -x "$DEST/bin/amtool" ] && [ -x "$DEST/bin/alertmanager" ] && exit 0
STATE=$(mktemp -d)
trap 'rm -rf "$STATE"' EXIT
mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial" "$DEST/bin"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$STATE/sources.list"
APT="-o Dir::Etc::SourceList=$STATE/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$STATE/lists
     -o Dir::Cache=$STATE/cache -o Dir::State::Status=/var/lib/dpkg/status -o APT::Sandbox::User=root -qq"
# shellcheck disable=SC2086
apt-get $APT update
# shellcheck disable=SC2086
(cd "$STATE" && apt-get $APT download prometheus-alertmanager)
dpkg-deb -x "$STATE"/prometheus-alertmanager_*.deb "$STATE/unpacked"
cp "$STATE/unpacked/usr/bin/amtool" "$DEST/bin/amtool"
cp "$STATE/unpacked/usr/bin/prometheus-alertmanager" "$DEST/bin/alertmanager"
"$DEST/bin/amtool" --version 2>&1 | head -1
