"""Throughput of live targets against a local OpenAI-compatible server with a fixed latency.

Measures, on this machine, what the engine's generation step (``evals.runs.generate``: prompt
rendering, bounded concurrency, the retry loop, redaction, the run journal and the output
cache) achieves against the bound ``concurrency / latency``, and how much of each case is the
pipeline's own work rather than waiting for the server:

1. the ``litellm`` target (litellm + the OpenAI SDK over HTTP), from the run's process and
   sharded over ``--processes`` worker processes (``evals.target.processes``);
2. the ``http`` target (httpx), the same two ways;
3. the pipeline alone: a live target whose call returns at once, so every microsecond left is
   impactgate's (executor, retry wrapper, redaction, journal, cache);
4. a rerun of (1) served entirely from the output cache.

The server runs in its own process (``python -m evals.testing``) so its CPU is not counted as
the client's; the workers of a sharded run are the client's, and their CPU is counted. A
sharded run's wall time includes starting its workers and building their targets.

    .venv/bin/python benchmarks/throughput.py     # 4,000 cases, concurrency 64, 200 ms, 2 processes
    .venv/bin/python benchmarks/throughput.py --processes 2,3   # sharded over 2, and over 3
    .venv/bin/python benchmarks/throughput.py --write      # and record benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

import yaml  # noqa: E402

from evals.contract import load_contract  # noqa: E402
from evals.dataset import Case  # noqa: E402
from evals.llm import RateLimiter  # noqa: E402
from evals.runs import Produce, generate, generate_in_processes, new_run_id, prepare  # noqa: E402
from evals.store import OutputCache, RunHeader, RunJournal  # noqa: E402
from evals.targets import LiteLLMTarget, LiveTarget, Output, Target  # noqa: E402
from tests.helpers import CONTRACT  # noqa: E402

PROMPT = (
    "Answer the customer's question from these help-centre passages only.\n"
    "{% for c in contexts %}- {{ c }}\n{% endfor %}\nQuestion: {{ input }}\n"
)
CONTEXTS = [
    "Refunds go back to the original payment method within 5 business days.",
    "Invoices are issued on the first day of each month and can be downloaded as PDF.",
]


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "evals.testing", "--latency", str(latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        process.kill()
        raise RuntimeError(f"the server did not start: {url!r}")
    return process, url


def own_cpu_seconds() -> float:
    """CPU of this process and of its finished worker processes (a sharded run's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def sharded(path: Path, target: LiveTarget[Any], processes: int) -> Produce:
    """What ``RunSession.generate`` calls for a contract with ``processes`` above one."""
    return functools.partial(
        generate_in_processes,
        str(path),
        target.version(),
        processes=processes,
        concurrency=target.concurrency,
        requests_per_minute=target.requests_per_minute,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_project(folder: Path, n: int, target: dict[str, Any]) -> Path:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["target"] = target
    data["evals"]["suites"] = ["policy", "latency"]  # a level needs a quality gate
    data["autonomy"]["levels"] = {"approval": {"gates": {"policy_violation_rate": {"max": 0.5}}}}
    data["autonomy"]["level"] = "approval"
    data["autonomy"]["rollback"] = {"metrics": [], "demote_to": "draft"}
    (folder / "policies" / "rules").mkdir(parents=True)
    rules = "policies/rules/default.yaml"
    (folder / rules).write_text((ROOT / rules).read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "datasets" / "bench").mkdir(parents=True)
    (folder / "prompts").mkdir()
    (folder / "prompts" / "answer.j2").write_text(PROMPT, encoding="utf-8")
    data["evals"]["dataset"] = "datasets/bench/cases.jsonl"
    import json

    with (folder / "datasets" / "bench" / "cases.jsonl").open("w", encoding="utf-8") as out:
        for i in range(n):
            case = {
                "id": f"case-{i:05d}",
                "input": f"When is refund {i} paid?",
                "contexts": CONTEXTS,
            }
            out.write(json.dumps(case) + "\n")
    path = folder / "policies" / "tiny-agent.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class TimedJournal(RunJournal):
    """Counts the time spent journaling (part of the pipeline's own overhead)."""

    spent = 0.0

    def record(self, output: Output, case_hash: str) -> None:
        """Journal one output, timed."""
        start = time.perf_counter()
        super().record(output, case_hash)
        TimedJournal.spent += time.perf_counter() - start


class TimedCache(OutputCache):
    """Counts the time spent writing the output cache."""

    spent = 0.0

    def put(self, version: str, case_hash: str, output: Output) -> None:
        """Cache one output, timed."""
        start = time.perf_counter()
        super().put(version, case_hash, output)
        TimedCache.spent += time.perf_counter() - start

    def flush(self) -> None:
        """Write the buffered outputs, timed."""
        start = time.perf_counter()
        super().flush()
        TimedCache.spent += time.perf_counter() - start


@dataclass
class Measured:
    """One generation run, measured."""

    name: str
    cases: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float
    latencies: list[float]
    errors: int
    calls: int
    journal_s: float = 0.0
    cache_s: float = 0.0

    @property
    def rate(self) -> float:
        """Cases per second of wall time."""
        return self.cases / self.wall_s

    def quantile(self, q: float) -> float:
        """A latency quantile of the calls made (cache hits excluded)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_generation(
    name: str,
    target: Target,
    cases: Sequence[Case],
    folder: Path,
    server_pid: int | None,
    cache: OutputCache | None,
    produce: Produce | None = None,
) -> Measured:
    version = target.version()
    header = RunHeader(
        run_id=new_run_id(),
        agent=version.agent,
        contract="bench",
        version=version.label,
        version_hash=version.hash,
        dataset="bench",
        dataset_hash="bench",
        trigger="manual",
        level="approval",
        started_at=datetime.now(UTC),
    )
    base = RunJournal.start(folder / "journal", header)
    journal = TimedJournal(base.path, base.header, {})
    TimedJournal.spent = TimedCache.spent = 0.0
    last_line = [time.monotonic()]

    def progress(done: int) -> None:  # what the CLI's plain progress lines cost
        now = time.monotonic()
        if now - last_line[0] >= 5 or done == len(cases):
            print(f"  {name}: {done}/{len(cases)}", file=sys.stderr)
            last_line[0] = now

    server_before = cpu_seconds(server_pid) if server_pid else 0.0
    cpu_before, started = own_cpu_seconds(), time.perf_counter()
    outputs = generate(target, cases, progress, cache=cache, journal=journal, produce=produce)
    wall, cpu = time.perf_counter() - started, own_cpu_seconds() - cpu_before
    server_cpu = (cpu_seconds(server_pid) - server_before) if server_pid else 0.0
    journal.discard()
    fresh = [o for o in outputs if not o.cached]
    return Measured(
        name=name,
        cases=len(cases),
        wall_s=wall,
        cpu_s=cpu,
        server_cpu_s=server_cpu,
        latencies=[o.latency_s for o in fresh if o.latency_s is not None and o.error is None],
        errors=sum(o.error is not None for o in outputs),
        calls=len(fresh),
        journal_s=TimedJournal.spent,
        cache_s=TimedCache.spent,
    )


def run_litellm_alone(
    target: LiteLLMTarget, cases: Sequence[Case], url: str, concurrency: int, server_pid: int
) -> Measured:
    """The same requests straight through ``litellm.acompletion``, no impactgate code at all."""
    import asyncio

    import litellm

    messages = [target.messages(case) for case in cases]
    latencies: list[float] = []

    async def main() -> None:
        gate = asyncio.Semaphore(concurrency)

        async def one(message: list[dict[str, Any]]) -> None:
            async with gate:
                start = time.perf_counter()
                await litellm.acompletion(
                    model="openai/gpt-4o-mini",
                    api_base=url,
                    api_key=os.environ["BENCH_KEY"],
                    messages=message,
                    temperature=0,
                    num_retries=0,
                    max_retries=0,
                    timeout=30,
                )
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(one(m) for m in messages))

    server_before = cpu_seconds(server_pid)
    cpu_before, started = time.process_time(), time.perf_counter()
    asyncio.run(main())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_before
    return Measured(
        name="litellm alone (no impactgate code)",
        cases=len(cases),
        wall_s=wall,
        cpu_s=cpu,
        server_cpu_s=cpu_seconds(server_pid) - server_before,
        latencies=latencies,
        errors=0,
        calls=len(cases),
    )


class InstantTarget(LiveTarget[None]):
    """A live target whose call answers at once: what is left is the pipeline's own cost."""

    kind = "instant"

    def __init__(self, like: LiveTarget[Any]) -> None:
        self._like = like
        self.concurrency = like.concurrency
        self.processes = 1
        self.requests_per_minute = None
        self.retry = like.retry
        self.cacheable = True

    def version(self) -> Any:
        """The litellm target's version (so the numbers are comparable)."""
        return self._like.version()

    def available_versions(self) -> list[str]:
        """As the litellm target."""
        return self._like.available_versions()

    def at_version(self, label: str) -> InstantTarget:
        """Only one version."""
        return self

    def secret_env_names(self) -> list[str]:
        """The litellm target's secrets, so redaction does the same work."""
        return self._like.secret_env_names()

    @asynccontextmanager
    async def session(
        self, cases: Sequence[Case], limiter: RateLimiter | None
    ) -> AsyncIterator[None]:
        """Nothing to open."""
        yield None

    async def call(self, session: None, case: Case) -> Output:
        """Answer at once, through the same retry wrapper as a real call."""
        from evals.llm import Failure, call_with_retries

        async def send() -> str:
            return f"answer to {case.input}"

        text, attempts = await call_with_retries(
            send, self.retry, lambda exc: Failure(False, str(exc))
        )
        return Output(case.id, text, latency_s=0.0, model="openai/gpt-4o-mini", attempts=attempts)


GOALS = {"litellm": 0.90, "http": 0.95}
"""Share of the concurrency/latency bound each target should reach, sharded (issue 17)."""


def _row(m: Measured, bound: float) -> str:
    latency = (
        f"{m.quantile(0.5) * 1000:.0f} / {m.quantile(0.95) * 1000:.0f} / "
        f"{m.quantile(0.99) * 1000:.0f} ms"
        if m.latencies
        else "— (no calls)"
    )
    server = f"{m.server_cpu_s / m.calls * 1000:.2f} ms" if m.calls and m.server_cpu_s else "—"
    return (
        f"| {m.name} | {m.wall_s:.2f} s | {m.rate:.1f} | {m.rate / bound:.0%} | {latency} | "
        f"{m.cpu_s / m.cases * 1000:.2f} ms | {server} | {m.errors} |"
    )


def _median(runs: list[Measured]) -> float:
    return statistics.median(m.rate for m in runs)


def _verdict(kind: str, processes: int, runs: list[Measured], goal: float, bound: float) -> str:
    median = _median(runs)
    verdict = "met" if median >= goal * bound else f"missed by {goal * bound - median:.1f} cases/s"
    return (
        f"**{kind} target, {processes} processes: median {median:.1f} cases/s = "
        f"{median / bound:.1%} of the bound (runs: {', '.join(f'{m.rate:.1f}' for m in runs)}) "
        f"— the {goal:.0%} goal ({goal * bound:.0f} cases/s) is {verdict}.**  "
    )


def markdown(
    args: argparse.Namespace,
    measured: list[Measured],
    runs: dict[str, list[Measured]],
    instant: Measured,
    render_s: float,
    load: tuple[float, float],
) -> str:
    bound = args.concurrency / args.latency
    counts = args.processes
    shown = ",".join(str(p) for p in counts)
    lines = [
        "## Throughput",
        "",
        f"Command: `.venv/bin/python benchmarks/throughput.py --cases {args.cases} "
        f"--concurrency {args.concurrency} --latency {args.latency:g} --processes {shown} "
        f"--repeat {args.repeat} --write`  ",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average {load[0]:.2f} before and {load[1]:.2f} "
        "after (1 minute). The local OpenAI-compatible server (`python -m evals.testing`) runs "
        f"in its own process and answers after a fixed {args.latency * 1000:.0f} ms; every run "
        f"is {args.cases} cases at concurrency {args.concurrency}. Bound = concurrency / "
        f"latency = {bound:.0f} cases/s. Each target run goes through `evals.runs.generate` "
        "with the run journal and the output cache on, as `impactgate run` does; the sharded "
        f"runs (`processes: N`) call from N forked worker processes with concurrency / N "
        "calls in flight each (`evals.runs.generate_in_processes`), "
        "their wall time including starting the workers, and their client CPU including the "
        "workers'. The paths are interleaved, run after run.",
        "",
        "| run | wall | cases/s | % of bound | client latency p50 / p95 / p99 | "
        "client CPU per case | server CPU per call | errors |",
        "|---|---|---|---|---|---|---|---|",
        *(_row(m, bound) for m in measured),
        "",
    ]
    for kind, goal in GOALS.items():
        one = runs[kind]
        lines.append(
            f"{kind} target from one process: median {_median(one):.1f} cases/s = "
            f"{_median(one) / bound:.1%} of the bound.  "
        )
        for p in counts:
            lines.append(_verdict(kind, p, runs[f"{kind} x{p}"], goal, bound))
    alone = runs["litellm alone"]
    overhead = statistics.fmean(
        statistics.fmean(m.latencies) - args.latency for m in runs["litellm"] if m.latencies
    )
    cpu = statistics.fmean(m.cpu_s / m.cases for m in runs["litellm"])
    cpu_sharded = ", ".join(
        f"{statistics.fmean(m.cpu_s / m.cases for m in runs[f'litellm x{p}']) * 1000:.2f} ms "
        f"over {p} processes"
        for p in counts
    )
    lines += [
        "",
        "The same requests sent by litellm alone, with no impactgate code, from one process, "
        f"made {', '.join(f'{m.rate:.1f}' for m in alone)} cases/s: one event loop cannot do "
        "litellm's client work for this many calls in flight, which is what sharding is for.",
        "",
        "Pipeline overhead per case (everything but waiting for the server):",
        f"- the whole client on the litellm target: {cpu * 1000:.2f} ms of CPU per case from "
        f"one process, {cpu_sharded} (the workers' included); from one "
        f"process a call took {overhead * 1000:.0f} ms longer than the server's "
        f"{args.latency * 1000:.0f} ms on average (client work plus waiting for the one event "
        "loop, busy with the other calls' client work);",
        "- impactgate's own share, measured with a target that answers instantly through the same "
        f"executor, retry wrapper, redaction, journal and output cache: "
        f"{instant.wall_s / instant.cases * 1e6:.0f} µs per case ({instant.rate:.0f} cases/s), of "
        f"which journal {instant.journal_s / instant.cases * 1e6:.0f} µs and output cache "
        f"{instant.cache_s / instant.cases * 1e6:.0f} µs; rendering the prompt template "
        f"{render_s / instant.cases * 1e6:.0f} µs per case (once, before the first call);",
        "- everything else is litellm and the OpenAI SDK: request building, response parsing, "
        'and litellm\'s per-call cost calculation and logging bookkeeping. The "litellm alone" '
        "rows send the same requests with no impactgate code at all.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--processes",
        default="2",
        help="worker processes of the sharded runs; several, comma-separated, measure each",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each live path")
    parser.add_argument("--write", action="store_true", help="record the section in RESULTS.md")
    args = parser.parse_args()
    try:
        args.processes = [int(p) for p in args.processes.split(",")]
    except ValueError:
        parser.error(f"--processes takes whole numbers, comma-separated, got {args.processes!r}")
    if not all(2 <= p <= args.concurrency for p in args.processes):
        parser.error(f"--processes must be between 2 and --concurrency ({args.concurrency})")

    os.environ.setdefault("BENCH_KEY", "sk-bench-0123456789")
    os.environ.setdefault("BENCH_TOKEN", "Bearer bench-token-0123456789")
    load_before = os.getloadavg()[0]
    process, url = start_server(args.latency)
    try:
        with tempfile.TemporaryDirectory(prefix="impactgate-throughput-") as tmp:
            folder = Path(tmp)
            os.environ["IMPACTGATE_CACHE_DIR"] = str(folder / "cache")
            common = {"concurrency": args.concurrency, "retry": {"attempts": 3, "timeout_s": 30}}
            llm_path = make_project(
                folder / "litellm",
                args.cases,
                {
                    "kind": "litellm",
                    "model": "openai/gpt-4o-mini",
                    "prompt": "prompts/answer.j2",
                    "api_base": url,
                    "api_key_env": "BENCH_KEY",
                    "params": {"temperature": 0},
                    **common,
                },
            )
            http_path = make_project(
                folder / "http",
                args.cases,
                {
                    "kind": "http",
                    "url": url.removesuffix("/v1") + "/agent",
                    "version": "bench",
                    "headers": {"Authorization": "BENCH_TOKEN"},
                    "response": {"output": "answer", "usage": "usage", "model": "model"},
                    **common,
                },
            )
            llm = prepare(load_contract(llm_path))
            assert isinstance(llm.target, LiteLLMTarget)
            started = time.perf_counter()
            llm.target.check(llm.dataset.cases)
            render_s = time.perf_counter() - started
            llm.target.preflight()  # imports litellm, as a real run does before the first call
            http = prepare(load_contract(http_path))
            assert isinstance(http.target, LiveTarget)
            http.target.preflight()
            cases = list(llm.dataset.cases)
            http_cases = list(http.dataset.cases)
            cache = TimedCache(folder / "cache" / "outputs.sqlite")
            paths: dict[str, tuple[Target, list[Case], Produce | None]] = {}
            names: dict[str, str] = {}
            for kind, plan, path, wanted in (
                ("litellm", llm, llm_path, cases),
                ("http", http, http_path, http_cases),
            ):
                assert isinstance(plan.target, LiveTarget)
                paths[kind], names[kind] = (plan.target, wanted, None), f"{kind} target"
                for p in args.processes:
                    key = f"{kind} x{p}"
                    paths[key] = (plan.target, wanted, sharded(path, plan.target, p))
                    names[key] = f"{kind} target, {p} processes"

            # The machine may be shared and litellm's client work is CPU-bound, so one run is
            # noisy: repeat, interleaving the live paths, and report every run.
            runs: dict[str, list[Measured]] = {key: [] for key in [*paths, "litellm alone"]}
            measured: list[Measured] = []
            for repeat in range(1, args.repeat + 1):
                for key, (target, wanted, produce) in paths.items():
                    first = key == "litellm" and repeat == 1  # fills the cache for the rerun
                    runs[key].append(
                        run_generation(
                            f"{names[key]}, run {repeat}",
                            target,
                            wanted,
                            folder,
                            process.pid,
                            cache
                            if first
                            else TimedCache(folder / "cache" / f"{key}{repeat}.sqlite"),
                            produce,
                        )
                    )
                    measured.append(runs[key][-1])
                    if key == "litellm":
                        runs["litellm alone"].append(
                            run_litellm_alone(llm.target, cases, url, args.concurrency, process.pid)
                        )
                        measured.append(runs["litellm alone"][-1])
            measured.append(
                run_generation(
                    "litellm target rerun, all from the output cache",
                    llm.target,
                    cases,
                    folder,
                    process.pid,
                    cache,
                )
            )
            instant = run_generation(
                "pipeline only (instant target)",
                InstantTarget(llm.target),
                cases,
                folder,
                None,
                TimedCache(folder / "cache" / "instant.sqlite"),
            )
            measured.append(instant)
    finally:
        process.terminate()
        process.wait(timeout=10)
    load = (load_before, os.getloadavg()[0])
    text = markdown(args, measured, runs, instant, render_s, load)
    print(text)
    if args.write:
        from benchmarks.results_file import write_section

        write_section("throughput", text)
        print("\nwrote the throughput section of benchmarks/RESULTS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
