"""The retrieval evaluation command: it runs on a tiny question set over one of the repository's own runbooks
and prints the table for every path; a wrong question file stops it with the entry named. No timing is
asserted (figures, not verdicts)."""
from __future__ import annotations

import io
import os
import subprocess
import sys

from memory_fixtures import REPO
from soma_memory.evaluate import DEFAULT_QUESTIONS, load_questions, main

TINY = """documents: [docs/runbooks/edge.md]
k: 3
questions:
  - id: denied
    question: A request was refused at the edge; how do I follow it through to find out why?
    answer: {document: docs/runbooks/edge.md, section: "A request was denied: follow it end to end"}
  - id: route
    question: What do I change to expose a new API path through the public edge with JWT scopes?
    answer: {document: docs/runbooks/edge.md, section: Adding a public route}
"""


def test_the_command_prints_recall_mrr_and_timings_for_every_path(tmp_path, minilm):
    questions = tmp_path / "questions.yaml"
    questions.write_text(TINY)
    out = io.StringIO()
    assert main(["--questions", str(questions), "--repo", str(REPO), "--chunk-size", "1000"], embedder=minilm, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("retrieval evaluation at ") and "2 questions, 1 documents" in lines[0]
    assert lines[1].startswith("ingest (direct path, embedding included): ")
    assert lines[2].split() == ["path", "recall@3", "doc-recall@3", "MRR", "query", "p50", "ms", "query", "mean", "ms"]
    rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in lines[3:]}
    assert set(rows) == {"direct-vector", "direct-hybrid", "llamaindex", "haystack"}
    assert all(0 <= recall <= 1 and 0 <= mrr <= 1 for recall, _, mrr, _, _ in rows.values())
    assert rows["llamaindex"][:3] == rows["haystack"][:3] == rows["direct-vector"][:3]   # same points, same model
    assert rows["direct-vector"][1] == 1.0     # the document found for both


def test_the_shipped_question_set_is_valid():
    shipped = load_questions(DEFAULT_QUESTIONS)
    assert len(shipped.questions) >= 20 and len({q.document for q in shipped.questions}) >= 15


def test_a_wrong_question_file_names_the_entry_and_exits_2(tmp_path):
    bad = tmp_path / "questions.yaml"
    bad.write_text(TINY.replace("section: Adding a public route", "section: Adding a private route"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in sorted((REPO / "apps").glob("*/src")))}
    done = subprocess.run([sys.executable, "-m", "soma_memory.evaluate", "--questions", str(bad), "--repo", str(REPO)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "questions[1] (route): answer.section 'Adding a private route' is not a heading of docs/runbooks/edge.md" in done.stderr
