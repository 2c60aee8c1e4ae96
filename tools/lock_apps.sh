#!/bin/sh
# Regenerates each app's hash-locked requirements.lock with uv (pinned in requirements-dev.txt).
# The dev virtualenv's versions are the constraints: the image installs exactly what `make test` ran
# (e.g. protobuf is held at the version Pulumi's SDK needs here, not the newest).
# pip's find-links folder (PIP_FIND_LINKS: this machine's torch CPU build, which no index serves) is passed
# to uv too, so an app that needs torch locks the file the tests ran with.
# Usage: sh tools/lock_apps.sh [app ...]   (default: every apps/*/pyproject.toml)
set -eu
cd "$(dirname "$0")/.."
UV=.venv/bin/uv
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
.venv/bin/python -m pip freeze --exclude-editable | grep -v '^-e ' | grep -vi '^soma-' > "$constraints"
apps=${*:-$(for p in apps/*/pyproject.toml; do basename "$(dirname "$p")"; done)}
for app in $apps; do
  # local packages (soma-*) are installed from source next to the lock, not from an index
  (cd "apps/$app" && "../../$UV" pip compile pyproject.toml --quiet --generate-hashes \
     --python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
     --constraint "$constraints" --no-emit-package soma-service ${PIP_FIND_LINKS:+--find-links "$PIP_FIND_LINKS"} \
     --custom-compile-command "sh tools/lock_apps.sh $app   (uv pip compile --generate-hashes, uv 0.13.9, constrained to the dev venv)" \
     -o requirements.lock)
  echo "apps/$app/requirements.lock: $(grep -c '^[a-z]' "apps/$app/requirements.lock") packages"
done
