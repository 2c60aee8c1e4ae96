#!/bin/sh
# Prints the PYTHONPATH that makes every app importable from this tree, the same paths apps/conftest.py
# adds for the tests:  PYTHONPATH=$(sh tools/apps_path.sh) .venv/bin/python -m soma_identity
cd "$(dirname "$0")/.." && ls -d "$PWD"/apps/*/src | paste -sd: -
