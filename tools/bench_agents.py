"""``make bench-agents``: what the Agents phase costs on this machine (issue 15, point 6). Prints figures; asserts
nothing (speed targets are not tests).

1. Orchestrator overhead per graph step. A workflow of ``--steps`` trivial steps, each asking the scripted model
   (``ScriptedModels``) once, is run ``--runs`` times through the real ``Orchestrator`` (LangGraph, the
   PostgreSQL checkpointer with ``durability="sync"``, the run and event tables, spans, the step policy) on a
   throw-away local PostgreSQL; every step stamps ``perf_counter()`` when it starts. The same step functions
   are then called directly one after another (no runtime, state merged by hand). A step interval is the time
   from one step's start to the next one's: overhead per step = runtime interval - bare interval (p50, p99).
   The run's fixed cost (start: authorization, audit, run row, graph build; end: final state, status) is
   printed apart.
2. Crew compile time: ``compile_crew`` for each example crew (YAML parse, schema, references, tools), and the
   graph a run builds from it (``build`` + LangGraph ``compile``), p50 over ``--compiles`` repetitions.
3. Memory-gateway query latency through ``MemoryStore.retrieve`` (the direct provider; query embedding with the
   packaged all-MiniLM-L6-v2 included), vector and hybrid, at 10k and 100k chunks in Qdrant's local mode.
   Embedding 100k chunks with the real model takes too long here, so the stored vectors are the real
   embeddings of the repository's docs chunks (from step 4) with small deterministic perturbations.
4. Ingestion throughput: ``MemoryStore.ingest`` (chunking, real embeddings, Qdrant upsert) over a fixed set of
   the repository's documents.

Usage (from the repository root): ``PYTHONPATH=$(sh tools/apps_path.sh) .venv/bin/python -m tools.bench_agents
[--quick]``.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypedDict

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("docs/*.md", "docs/runbooks/*.md", "docs/architecture/*.md")   # the retrieval evaluation's documents
TENANT, COLLECTION = "bench", "docs"


def progress(message: str) -> None:
    """What the benchmark is doing now, on stderr (the figures come at the end, on stdout)."""
    print(f"bench-agents: {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class Table:
    """Rows of (figure, p50 or value, p99 or "", unit, conditions), printed at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, figure: str, value: float, p99: float | None, unit: str, note: str = "") -> None:
        self.rows.append((figure, f"{value:.3f}" if value < 100 else f"{value:.1f}",
                          "" if p99 is None else (f"{p99:.3f}" if p99 < 100 else f"{p99:.1f}"), unit, note))
        progress("  ".join(self.rows[-1][:4]))      # as measured, so a long run shows its figures early

    def print(self) -> None:
        widths = [max(len(r[i]) for r in self.rows + [("figure", "p50/value", "p99", "unit", "")]) for i in range(4)]
        print(f"{'figure':<{widths[0]}}  {'p50/value':>{widths[1]}}  {'p99':>{widths[2]}}  {'unit':<{widths[3]}}  conditions")
        for figure, value, p99, unit, note in self.rows:
            print(f"{figure:<{widths[0]}}  {value:>{widths[1]}}  {p99:>{widths[2]}}  {unit:<{widths[3]}}  {note}")


# --- 1. orchestrator ----------------------------------------------------------------------------------------
class StepState(TypedDict, total=False):
    steps: int
    last: str


@contextmanager
def local_postgres() -> Iterator[str]:
    """A throw-away PostgreSQL on a loopback port, set up as the orchestrator's tests set theirs up."""
    from tests.local_servers import server_bin, throwaway_database

    if server_bin() is None:
        raise SystemExit("no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql")
    with throwaway_database("orchestrator", fsync="off", synchronous_commit="off") as dsn:
        yield dsn


def step_functions(runtime, steps: int, stamps: list[float]) -> list[tuple[str, Callable]]:
    """``steps`` trivial steps: stamp the start, ask the scripted model once, count."""
    from langchain_core.messages import HumanMessage

    def make(index: int):
        async def step(state: StepState) -> dict:
            stamps.append(time.perf_counter())
            reply = await runtime.model_for("worker").ainvoke([HumanMessage(f"step {index}")])
            return {"steps": state.get("steps", 0) + 1, "last": reply.content}
        return step

    return [(f"step_{i:02d}", make(i)) for i in range(steps)]


class _AllowAll:
    """OpenFGA's Check answered in-process (yes): the benchmark measures the runtime, not OpenFGA."""

    async def check(self, user: str, relation: str, obj: str) -> bool:
        return True


class _NullSink:
    async def start(self): ...
    async def stop(self): ...
    async def emit(self, event: dict) -> None: ...


async def orchestrator_figures(dsn: str, steps: int, runs: int, warmup: int) -> dict[str, list[float]]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from langgraph.graph import END, START, StateGraph
    from opentelemetry.sdk.trace import TracerProvider

    from soma_orchestrator.audit import Auditor
    from soma_orchestrator.authz import Authorizer, Caller
    from soma_orchestrator.definitions import Definition
    from soma_orchestrator.registry import DefinitionRegistry
    from soma_orchestrator.runtime import Orchestrator
    from soma_orchestrator.scripted import ScriptedModels
    from soma_orchestrator.steps import StepPolicy
    from soma_orchestrator.store import Store, open_pool

    total_runs = warmup + runs
    models = ScriptedModels({"worker": ["ok"] * (steps * (total_runs + warmup + runs))})
    stamps: list[float] = []

    def build(runtime) -> StateGraph:
        graph = StateGraph(StepState)
        previous = START
        for name, function in step_functions(runtime, steps, stamps):
            graph.add_node(name, function)
            graph.add_edge(previous, name)
            previous = name
        graph.add_edge(previous, END)
        return graph

    def compile_bench(text: str, source: str, available_tools: frozenset[str]) -> Definition:
        return Definition(name="bench-steps", kind="bench", source=source, build=build, agents=("worker",))

    pool = open_pool(dsn, None, 4)
    await pool.open(wait=True, timeout=30)
    figures: dict[str, list[float]] = {"runtime": [], "bare": [], "start": [], "finish": [], "run": []}
    try:
        store = Store(pool)
        checkpointer = AsyncPostgresSaver(pool)
        await checkpointer.setup()
        await store.migrate()
        registry = DefinitionRegistry(store, {"bench": compile_bench}, frozenset())
        tracer = TracerProvider().get_tracer("bench")      # spans made, no exporter attached
        orchestrator = Orchestrator(store, registry, checkpointer, models, {}, Authorizer(_AllowAll()), Auditor(_NullSink()),
                                    tracer, StepPolicy(), recursion_limit=steps + 10)
        caller = Caller("bench", "user:bench")
        await registry.register("bench-steps", "bench", "bench", "{}", "bench-steps", caller.principal)
        for n in range(total_runs):
            stamps.clear()
            started = time.perf_counter()
            run = await orchestrator.start(caller, "bench-steps", {"steps": 0})
            await orchestrator.wait(run.run_id)
            finished = time.perf_counter()
            status = (await store.run(run.run_id)).status
            if status != "succeeded" or len(stamps) != steps:
                raise SystemExit(f"benchmark run {run.run_id} ended {status} after {len(stamps)} of {steps} steps")
            if n >= warmup:
                figures["runtime"] += [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]
                figures["start"].append((stamps[0] - started) * 1000)
                figures["finish"].append((finished - stamps[-1]) * 1000)
                figures["run"].append((finished - started) * 1000)
        await orchestrator.close()
    finally:
        await pool.close()

    class Bare:
        def model_for(self, agent: str, model: str | None = None):
            return models.model_for(agent, model)

    functions = step_functions(Bare(), steps, stamps)
    for n in range(total_runs):
        stamps.clear()
        state: dict = {"steps": 0}
        for _, function in functions:
            state.update(await function(state))
        if n >= warmup:
            figures["bare"] += [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]
    return figures


def bench_orchestrator(table: Table, steps: int, runs: int) -> None:
    progress(f"orchestrator: {runs} runs of {steps} steps on a local PostgreSQL")
    with local_postgres() as dsn:
        figures = asyncio.run(orchestrator_figures(dsn, steps, runs, warmup=2))
    r, b = figures["runtime"], figures["bare"]
    where = f"{steps} steps x {runs} runs, scripted model, PostgreSQL checkpointer"
    table.add("orchestrator step interval, through the runtime", percentile(r, 50), percentile(r, 99), "ms", where)
    table.add("orchestrator step interval, bare node calls", percentile(b, 50), percentile(b, 99), "ms", "same step functions awaited in a loop")
    table.add("orchestrator overhead per step (runtime - bare)", percentile(r, 50) - percentile(b, 50),
              percentile(r, 99) - percentile(b, 99), "ms", "difference of the percentiles above")
    table.add("orchestrator run start (start() -> first step)", percentile(figures["start"], 50), percentile(figures["start"], 99), "ms",
              "authz (in-process yes) + audit + run row + graph build")
    table.add("orchestrator run end (last step -> run finished)", percentile(figures["finish"], 50), percentile(figures["finish"], 99), "ms",
              "last step + final checkpoint + status")


# --- 2. crews -----------------------------------------------------------------------------------------------
def bench_crews(table: Table, repetitions: int) -> None:
    from langchain_core.tools import tool as make_tool

    from soma_orchestrator.crews import EXAMPLE_TOOLS, EXAMPLES_DIR, compile_crew, compile_example_crews
    from soma_orchestrator.scripted import ScriptedModel

    stub_tools = {name: make_tool(name, description=f"benchmark stand-in for {name}")(lambda query="": "")
                  for name in EXAMPLE_TOOLS}

    class CompileRuntime:
        def model_for(self, agent: str, model: str | None = None):
            return ScriptedModel([], agent=agent)

        def tools_for(self, agent: str, names: tuple[str, ...]):
            return {name: stub_tools[name] for name in names}

    progress(f"crews: compiling each example crew {repetitions} times")
    compile_example_crews()                                   # imports and caches warm
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        compile_ms, graph_ms = [], []
        for _ in range(repetitions):
            started = time.perf_counter()
            definition = compile_crew(text, path.name, EXAMPLE_TOOLS)
            compile_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            definition.build(CompileRuntime()).compile()
            graph_ms.append((time.perf_counter() - started) * 1000)
        table.add(f"crew compile {path.name}", statistics.median(compile_ms), None, "ms",
                  f"compile_crew: YAML + schema + references, p50 of {repetitions}")
        table.add(f"crew graph build {path.name}", statistics.median(graph_ms), None, "ms",
                  f"per run: build_graph + LangGraph compile, p50 of {repetitions}")


# --- 3. and 4. memory gateway -------------------------------------------------------------------------------
def fixed_documents(quick: bool) -> dict[str, str]:
    found = {}
    for pattern in DOCS:
        for path in sorted(ROOT.glob(pattern)):
            found[path.relative_to(ROOT).as_posix()] = path.read_text(encoding="utf-8")
    if quick:
        found = dict(list(found.items())[:3])
    return found


def questions() -> list[str]:
    import yaml

    data = yaml.safe_load((ROOT / "apps/memory/evaluation/questions.yaml").read_text())
    return [entry["question"] for entry in data["questions"]]


def bench_memory(table: Table, sizes: tuple[int, ...], queries: int, quick: bool) -> None:
    import numpy as np
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as rest

    from soma_memory.embeddings import SentenceTransformerEmbedder
    from soma_memory.model import DocumentIn, chunk_id
    from soma_memory.store import MemoryStore

    import warnings
    warnings.filterwarnings("ignore", message="Local mode is not recommended")   # said in the conditions instead
    embedder = SentenceTransformerEmbedder()
    embedder.embed(["warm-up"])
    documents = fixed_documents(quick)
    progress(f"memory: ingesting {len(documents)} repository documents with the real model")
    store = MemoryStore(QdrantClient(":memory:"), embedder)
    started = time.perf_counter()
    results = store.ingest(TENANT, COLLECTION, [DocumentIn(path.replace("/", "~"), text, {"path": path})
                                                for path, text in documents.items()])
    seconds = time.perf_counter() - started
    chunks = sum(r.chunks for r in results)
    characters = sum(len(t) for t in documents.values())
    table.add("ingestion throughput (direct path)", chunks / seconds, None, "chunks/s",
              f"{len(documents)} repository docs, {characters} characters, {chunks} chunks of <=800 characters, "
              f"real model, {seconds:.1f} s")

    # the real chunks, with their vectors, are the base of the larger collections
    records, offset = [], None
    while True:
        page, offset = store.client.scroll(store.collection_name(TENANT, COLLECTION), limit=1000, offset=offset,
                                           with_payload=True, with_vectors=True)
        records += page
        if offset is None:
            break
    base = np.array([r.vector for r in records], dtype=np.float32)
    payloads = [r.payload for r in records]
    asked = questions()
    rng = np.random.default_rng(15)
    embedder.embed(asked)                                      # every question once, unmeasured
    embedding_ms = []
    for question in asked:
        t = time.perf_counter()
        embedder.embed([question])
        embedding_ms.append((time.perf_counter() - t) * 1000)
    table.add("query embedding alone (all-MiniLM-L6-v2)", percentile(embedding_ms, 50), percentile(embedding_ms, 99), "ms",
              f"{len(asked)} questions, included in the query figures below")
    for size in sizes:
        collection = f"synthetic-{size}"
        progress(f"memory: storing {size:,} chunks, then {queries} queries per mode")
        name = store.ensure_collection(TENANT, collection)
        for first in range(0, size, 1000):
            ids = range(first, min(size, first + 1000))
            picks = [i % len(base) for i in ids]
            vectors = base[picks] + rng.normal(0.0, 0.02, (len(picks), base.shape[1])).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            points = []
            for i, pick, vector in zip(ids, picks, vectors):
                document = f"doc-{i // 20}"
                meta = {**payloads[pick]["meta"], "collection": collection, "document_id": document, "chunk_index": i % 20,
                        "chunk_id": chunk_id(TENANT, collection, document, i % 20)}
                points.append(rest.PointStruct(id=meta["chunk_id"], vector=vector.tolist(),
                                               payload={"content": payloads[pick]["content"], "meta": meta}))
            store.client.upsert(name, points=points, wait=True)
        stored = store.count(TENANT, collection)
        for mode in ("vector", "hybrid"):
            store.retrieve(TENANT, collection, asked[0], 5, mode=mode)     # warm
            timings = []
            for n in range(queries):
                t = time.perf_counter()
                hits = store.retrieve(TENANT, collection, asked[n % len(asked)], 5, mode=mode)
                timings.append((time.perf_counter() - t) * 1000)
                if len(hits) != 5:
                    raise SystemExit(f"{mode} query at {stored} chunks returned {len(hits)} hits")
            table.add(f"memory query {mode}, {stored:,} chunks", percentile(timings, 50), percentile(timings, 99), "ms",
                      f"k=5, {queries} queries, MemoryStore.retrieve incl. query embedding, Qdrant local mode")
        store.drop(TENANT, collection)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_agents", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small smoke run (few steps, runs, docs, 1,000 chunks)")
    parser.add_argument("--steps", type=int, help="steps per workflow (default 10; quick 3)")
    parser.add_argument("--runs", type=int, help="measured workflow runs (default 50; quick 2)")
    parser.add_argument("--compiles", type=int, help="repetitions per crew (default 50; quick 3)")
    parser.add_argument("--queries", type=int, help="queries per size and mode (default 100; quick 5)")
    args = parser.parse_args(argv)
    quick = args.quick
    steps = args.steps or (3 if quick else 10)
    runs = args.runs or (2 if quick else 50)
    compiles = args.compiles or (3 if quick else 50)
    queries = args.queries or (5 if quick else 100)
    sizes = (1000,) if quick else (10_000, 100_000)

    table = Table()
    load_before = os.getloadavg()
    started = time.perf_counter()
    bench_orchestrator(table, steps, runs)
    bench_crews(table, compiles)
    bench_memory(table, sizes, queries, quick)
    load_after = os.getloadavg()
    print(f"Agents-phase benchmark{' (--quick: a smoke run, figures not meaningful)' if quick else ''}: "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average {load_before[0]:.2f} before and "
          f"{load_after[0]:.2f} after (other work on this machine shows in p99), {time.perf_counter() - started:.0f} s")
    table.print()
    print("Conditions: the orchestrator runs on a local PostgreSQL (fsync and synchronous_commit off, as in the tests; "
          "on CloudNativePG add the commit latency per step); OpenFGA answered in-process, audit to a null sink, spans "
          "made without an exporter. Overhead = p50 (p99) of the runtime's step interval minus that of the bare calls.")
    print("Memory: Qdrant in the client's local mode (in process, exact search, no payload indexes; Qdrant advises "
          "against it past 20,000 points): no Qdrant server was available here; a server's HNSW index and payload indexes will give different figures. The 10k/100k "
          "collections hold the real embeddings of the ingested docs chunks with small deterministic perturbations "
          "(Gaussian, sigma 0.02, renormalised, seed 15), since embedding 100k chunks with the real model takes too long "
          "here; queries are embedded with the real model (the questions of apps/memory/evaluation/questions.yaml).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
