"""Fixtures for the memory gateway's tests: the packaged embedding model, loaded once per test session (it
takes seconds), and the OpenFGA stand-in per module."""
from __future__ import annotations

import pytest

from memory_fixtures import DECISIONS, MODEL_ID, STORE_ID


@pytest.fixture(scope="session")
def minilm():
    from soma_memory.embeddings import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="module")
def fga():
    from soma_gateway import standins

    server = standins.OpenFgaStandIn(STORE_ID, MODEL_ID, DECISIONS).start()
    yield server
    server.stop()
