"""Shared fixtures: each stack is rendered once per test session, through the real program."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STACKS = ("dev", "staging", "prod")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """``{stack: (plan, generated_credentials, out_dir)}`` for every stack."""
    from tools.render import render_with_secrets

    out = {}
    for stack in STACKS:
        folder = tmp_path_factory.mktemp(f"render-{stack}")
        plan, generated = render_with_secrets(stack, folder)
        out[stack] = (plan, generated, folder)
    return out


@pytest.fixture(scope="session")
def plans(rendered):
    return {stack: value[0] for stack, value in rendered.items()}
