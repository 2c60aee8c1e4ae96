"""The keyword half of hybrid retrieval: BM25 (Okapi, k1=1.5, b=0.75) over the vector search's candidates,
fused with the vector ranking by reciprocal rank fusion (RRF, k=60).

Why a re-rank and not a second index: it costs no sparse vectors, no extra Qdrant configuration and no
second model, and it lifts chunks that contain the query's exact words (a setting name, an error code) that
the embedding ranks a little lower. Its limit: it only reorders what the vector search found (the
candidate pool is ``k * hybrid_candidates``), and document frequencies are those of the pool.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

_WORD = re.compile(r"[a-z0-9_]+")
STOP = frozenset("a an and are as at be by do does for from how i in is it its of on or the this to what when where which who why with".split())


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in STOP]


def bm25_scores(query: str, texts: Sequence[str], k1: float = 1.5, b: float = 0.75) -> list[float]:
    docs = [words(text) for text in texts]
    if not docs:
        return []
    average = sum(len(d) for d in docs) / len(docs) or 1.0
    frequency = Counter(term for d in docs for term in set(d))
    terms = set(words(query))
    scores = []
    for d in docs:
        counts = Counter(d)
        score = 0.0
        for term in terms:
            if counts[term]:
                idf = math.log(1 + (len(docs) - frequency[term] + 0.5) / (frequency[term] + 0.5))
                tf = counts[term]
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(d) / average))
        scores.append(score)
    return scores


def fuse(vector_order: Sequence[int], keyword_scores: Sequence[float], k: int = 60) -> list[tuple[int, float]]:
    """(candidate index, fused score) best first; ``vector_order`` lists candidate indexes best first."""
    fused = {index: 1.0 / (k + rank + 1) for rank, index in enumerate(vector_order)}
    keyword_order = sorted((i for i, s in enumerate(keyword_scores) if s > 0), key=lambda i: -keyword_scores[i])
    for rank, index in enumerate(keyword_order):
        fused[index] = fused.get(index, 0.0) + 1.0 / (k + rank + 1)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
