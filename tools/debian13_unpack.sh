#!/bin/sh
# Unpacks one Debian 13 (trixie) package into a folder, without installing it: a private apt state is
# used, so the machine's apt sources and dpkg database are left alone. Shared by the tool fetchers.
# Usage: sh tools/debian13_unpack.sh <package> <folder>   (the package's files land under <folder>/)
set -eu
PACKAGE=$1
OUT=$2
STATE=$(mktemp -d)
trap 'rm -rf "$STATE"' EXIT
mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" > "$STATE/sources.list"
APT="-o Dir::Etc::SourceList=$STATE/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$STATE/lists
     -o Dir::Cache=$STATE/cache -o Dir::State::Status=/var/lib/dpkg/status -o APT::Sandbox::User=root -qq"
# shellcheck disable=SC2086
apt-get $APT update
# shellcheck disable=SC2086
(cd "$STATE" && apt-get $APT download "$PACKAGE")
dpkg-deb -x "$STATE"/"${PACKAGE}"_*.deb "$OUT"
