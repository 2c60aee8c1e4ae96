"""``python -m soma_memory.evaluate``: the retrieval evaluation. Ingests the repository's own documents (the
globs in the question file, as they are in the work tree it runs in) once through the direct path, asks
the fixed question set through every path over the same collection, and prints recall@k, document
recall@k and MRR side by side, with timings.

A question is answered at rank r by the first hit whose document is the expected one and whose section path
contains the expected heading; recall@k counts questions answered within k, MRR averages 1/r (0 past k).
The direct path is evaluated twice (vector, hybrid); LlamaIndex and Haystack read the same points with the
same model, so their figures show whether the adapters lose or reorder anything.

Usage: ``PYTHONPATH=$(sh tools/apps_path.sh) .venv/bin/python -m soma_memory.evaluate [--questions FILE]
[--k N] [--paths direct-vector,direct-hybrid,llamaindex,haystack] [--repo DIR]``. Not a test: figures, not
verdicts; the tests only check that it runs and prints the table.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

HERE = Path(__file__).resolve()
DEFAULT_QUESTIONS = HERE.parents[2] / "evaluation" / "questions.yaml"
DEFAULT_REPO = HERE.parents[4]
PATHS = ("direct-vector", "direct-hybrid", "llamaindex", "haystack")
TENANT, COLLECTION = "evaluation", "repository-docs"


class QuestionFileError(ValueError):
    """The question file is wrong; the message names the file and the entry."""


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    document: str
    section: str


@dataclass(frozen=True)
class QuestionSet:
    documents: tuple[str, ...]
    k: int
    questions: tuple[Question, ...]


def load_questions(path: Path) -> QuestionSet:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise QuestionFileError(f"{path}: cannot be read as YAML: {exc}") from None
    problems = []
    if not isinstance(data, dict):
        raise QuestionFileError(f"{path}: expected a mapping with documents, k, questions")
    unknown = set(data) - {"documents", "k", "questions"}
    if unknown:
        problems.append(f"{path}: unknown keys {sorted(unknown)}")
    documents = data.get("documents")
    if not (isinstance(documents, list) and documents and all(isinstance(d, str) for d in documents)):
        problems.append(f"{path}: documents: a list of glob patterns is required")
    k = data.get("k", 5)
    if not isinstance(k, int) or k < 1:
        problems.append(f"{path}: k: a positive integer is required")
    questions, seen = [], set()
    for i, entry in enumerate(data.get("questions") or []):
        where = f"{path}: questions[{i}]"
        answer = entry.get("answer") if isinstance(entry, dict) else None
        if not isinstance(entry, dict) or set(entry) != {"id", "question", "answer"} or not isinstance(answer, dict) \
                or set(answer) != {"document", "section"}:
            problems.append(f"{where}: expected {{id, question, answer: {{document, section}}}}")
            continue
        if entry["id"] in seen:
            problems.append(f"{where}.id: {entry['id']!r} is used twice")
        seen.add(entry["id"])
        if not all(isinstance(v, str) and v.strip() for v in (entry["id"], entry["question"], answer["document"], answer["section"])):
            problems.append(f"{where}: id, question, answer.document and answer.section must be non-empty text")
            continue
        questions.append(Question(entry["id"], entry["question"], answer["document"], str(answer["section"])))
    if not questions and not problems:
        problems.append(f"{path}: questions: at least one question is required")
    if problems:
        raise QuestionFileError("\n".join(problems))
    return QuestionSet(tuple(documents), k, tuple(questions))


def collect_documents(repo: Path, patterns: Sequence[str]) -> dict[str, str]:
    found = {}
    for pattern in patterns:
        for path in sorted(repo.glob(pattern)):
            if path.is_file():
                found[path.relative_to(repo).as_posix()] = path.read_text()
    return found


def check_answers(questions: QuestionSet, documents: dict[str, str], where: Path) -> None:
    """Every expected document is ingested and every expected section is one of its headings."""
    from .chunking import sections

    problems = []
    headings = {doc: {part for path, _, _ in sections(text) for part in path.split(" > ")} for doc, text in documents.items()}
    for i, q in enumerate(questions.questions):
        if q.document not in documents:
            problems.append(f"{where}: questions[{i}] ({q.id}): answer.document {q.document!r} is not among the ingested documents")
        elif q.section not in headings[q.document]:
            problems.append(f"{where}: questions[{i}] ({q.id}): answer.section {q.section!r} is not a heading of {q.document}")
    if problems:
        raise QuestionFileError("\n".join(problems))


@dataclass
class Figures:
    path: str
    recall: float
    doc_recall: float
    mrr: float
    p50_ms: float
    mean_ms: float


def score(path: str, retrieve, questions: QuestionSet, k: int) -> Figures:
    answered, doc_answered, reciprocal, timings = 0, 0, 0.0, []
    for q in questions.questions:
        start = time.perf_counter()
        hits = retrieve(q.question, k)
        timings.append((time.perf_counter() - start) * 1000)
        rank = next((r for r, h in enumerate(hits, 1) if h.metadata.get("path") == q.document and q.section in h.section.split(" > ")), None)
        if rank:
            answered += 1
            reciprocal += 1 / rank
        doc_answered += any(h.metadata.get("path") == q.document for h in hits)
    n = len(questions.questions)
    return Figures(path, answered / n, doc_answered / n, reciprocal / n, statistics.median(timings), statistics.fmean(timings))


def document_id(path: str) -> str:
    return path.replace("/", "~")


def commit_of(repo: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "docs"], capture_output=True, text=True).stdout.strip()
        return head + (" (docs/ modified in the work tree)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"


def run(questions: QuestionSet, documents: dict[str, str], embedder, *, k: int, paths: Sequence[str],
        chunk_size: int, chunk_overlap: int, out: TextIO, header: str) -> list[Figures]:
    from qdrant_client import QdrantClient

    from .adapters import provider
    from .model import DocumentIn
    from .store import ChunkRule, MemoryStore

    store = MemoryStore(QdrantClient(":memory:"), embedder, ChunkRule(chunk_size, chunk_overlap), max_k=max(k, 50))
    start = time.perf_counter()
    # a document id is one path segment (no "/"): the repository path travels as metadata
    results = store.ingest(TENANT, COLLECTION, [DocumentIn(document_id(name), text, {"path": name}) for name, text in documents.items()])
    ingest_s = time.perf_counter() - start
    chunks = sum(r.chunks for r in results)
    print(f"{header}: {len(questions.questions)} questions, {len(documents)} documents, {chunks} chunks "
          f"({chunk_size} characters, {chunk_overlap} overlap), embedder {embedder.name}, k={k}", file=out)
    print(f"ingest (direct path, embedding included): {ingest_s:.1f} s, {chunks / ingest_s:.1f} chunks/s", file=out)
    figures = []
    for path in paths:
        if path.startswith("direct-"):
            mode = path.removeprefix("direct-")
            retrieve = lambda query, n, mode=mode: store.retrieve(TENANT, COLLECTION, query, n, mode=mode)
        else:
            adapter = provider(path, store)
            adapter.retrieve(TENANT, COLLECTION, "warm-up", 1)   # framework imports and set-up are not query time
            retrieve = lambda query, n, adapter=adapter: adapter.retrieve(TENANT, COLLECTION, query, n)
        figures.append(score(path, retrieve, questions, k))
    print(f"{'path':<15} {f'recall@{k}':>9} {f'doc-recall@{k}':>14} {'MRR':>6} {'query p50 ms':>13} {'query mean ms':>14}", file=out)
    for f in figures:
        print(f"{f.path:<15} {f.recall:>9.3f} {f.doc_recall:>14.3f} {f.mrr:>6.3f} {f.p50_ms:>13.1f} {f.mean_ms:>14.1f}", file=out)
    return figures


def main(argv: Sequence[str] | None = None, *, embedder=None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m soma_memory.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO, help="the work tree whose documents are ingested")
    parser.add_argument("--k", type=int, help="overrides the question file's k")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, of {', '.join(PATHS)}")
    parser.add_argument("--chunk-size", type=int, default=800)
    parser.add_argument("--chunk-overlap", type=int, default=100)
    args = parser.parse_args(argv)
    paths = [p for p in args.paths.split(",") if p]
    bad = [p for p in paths if p not in PATHS]
    if bad:
        parser.error(f"--paths: unknown {bad}; expected some of {', '.join(PATHS)}")
    try:
        questions = load_questions(args.questions)
        documents = collect_documents(args.repo, questions.documents)
        if not documents:
            raise QuestionFileError(f"{args.questions}: documents: no file under {args.repo} matches {list(questions.documents)}")
        check_answers(questions, documents, args.questions)
    except QuestionFileError as exc:
        print(exc, file=sys.stderr)
        return 2
    if embedder is None:
        from .embeddings import SentenceTransformerEmbedder
        embedder = SentenceTransformerEmbedder()
    run(questions, documents, embedder, k=args.k or questions.k, paths=paths, chunk_size=args.chunk_size,
        chunk_overlap=args.chunk_overlap, out=out, header=f"retrieval evaluation at {commit_of(args.repo)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
