#!/bin/sh
# Puts Alertmanager's amtool (and the server, as .tools/bin/alertmanager) under .tools/bin for the tests
# that check the rendered Alertmanager configuration (tests/core/test_observability_ha.py). Debian 12's prometheus-alertmanager is 0.25, which
# does not know webhook url_file; Debian 13's (0.28.1) does and runs here (tools/debian13_unpack.sh).
# Usage: sh tools/fetch_amtool.sh [destination, default .tools]
set -eu
DEST=${1:-.tools}
[ -x "$DEST/bin/amtool" ] && [ -x "$DEST/bin/alertmanager" ] && exit 0
UNPACKED=$(mktemp -d)
trap 'rm -rf "$UNPACKED"' EXIT
sh "$(dirname "$0")/debian13_unpack.sh" prometheus-alertmanager "$UNPACKED"
mkdir -p "$DEST/bin"
cp "$UNPACKED/usr/bin/amtool" "$DEST/bin/amtool"
cp "$UNPACKED/usr/bin/prometheus-alertmanager" "$DEST/bin/alertmanager"
"$DEST/bin/amtool" --version 2>&1 | head -1
