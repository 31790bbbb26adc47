"""Helpers shared by tests: a contract builder, stored runs, a promotable project, and local
HTTP and SMTP receivers for notifications."""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from evals.testing import FakeOpenAIServer

CONTRACT: dict[str, Any] = {
    "agent": "tiny-agent",
    "description": "A tiny agent for tests.",
    "owner": "owner@example.test",
    "outcome": {
        "business": [
            {
                "name": "Cost per ticket",
                "baseline": 5,
                "target": 2,
                "unit": "USD",
                "window": "90d",
                "owner": "fin",
            }
        ],
        "customer": {
            "name": "CSAT",
            "baseline": 4,
            "target": 4.5,
            "unit": "score",
            "window": "90d",
            "owner": "cx",
        },
    },
    "adoption": {"measure": "share of tickets", "target": 0.5, "window": "12w", "owner": "ops"},
    "workflow": {
        "cycle_time": {"baseline": 10, "target": 2, "unit": "h"},
        "automation_rate": {"baseline": 0, "target": 0.5},
        "escalation_rate": {"baseline": 1, "target": 0.5},
        "rework_rate": {"baseline": 0.1, "target": 0.05},
        "error_budget": 0.1,
    },
    "autonomy": {
        "level": "constrained",
        "min_samples": 4,
        "levels": {
            "approval": {"gates": {"policy_violation_rate": {"max": 0.4}}},
            "constrained": {"gates": {"faithfulness": {"min": 0.5}}},
        },
        "escalation": {"owner": "owner@example.test"},
        "rollback": {
            "metrics": ["policy_violation_rate"],
            "demote_to": "approval",
            "known_good": "v1",
        },
    },
    "evals": {
        "dataset": "datasets/tiny-agent/cases.jsonl",
        "target": {
            "kind": "replay",
            "version": "v2",
            "outputs": "datasets/tiny-agent/outputs.jsonl",
        },
        "suites": ["grounding", "hallucination", "policy", "cost", "latency"],
        "policy": {"rule_packs": ["policies/rules/default.yaml"]},
        "cost": {"model": "gpt-4o-mini"},
    },
}

CONTEXT = "Refunds go back to the original payment method within 5 business days."
CASES = [
    {
        "id": f"c{i}",
        "input": f"question {i}: when is my refund paid?",
        "contexts": [CONTEXT],
        "tags": ["refunds"],
    }
    for i in range(1, 9)
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def recordings(version: str, leak_every: int = 0) -> list[dict[str, Any]]:
    rows = []
    for i, case in enumerate(CASES, start=1):
        text = "Refunds go back to the original payment method within 5 business days."
        if leak_every and i % leak_every == 0:
            text += " I emailed the receipt to jane.roe@mail.example."
        rows.append(
            {
                "case_id": case["id"],
                "version": version,
                "output": text,
                "latency_s": 0.5 + i / 10,
                "usage": {"prompt_tokens": 100, "completion_tokens": 20},
            }
        )
    return rows


def make_project(tmp: Path, contract: dict[str, Any] | None = None, leak_every: int = 2) -> Path:
    """A project folder with one contract, its dataset, recordings (v1 clean, v2 leaking)
    and the repository's default rule pack. Returns the contract path."""
    repo = Path(__file__).resolve().parents[1]
    data = contract or CONTRACT
    (tmp / "policies" / "rules").mkdir(parents=True, exist_ok=True)
    (tmp / "policies" / "rules" / "default.yaml").write_text(
        (repo / "policies" / "rules" / "default.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    write_jsonl(tmp / "datasets" / "tiny-agent" / "cases.jsonl", CASES)
    write_jsonl(
        tmp / "datasets" / "tiny-agent" / "outputs.jsonl",
        recordings("v1") + recordings("v2", leak_every=leak_every),
    )
    path = tmp / "policies" / f"{data['agent']}.yaml"
    path.write_text(yaml_text(data), encoding="utf-8")
    return path


def yaml_text(data: Any) -> str:
    """``data`` as block YAML in its own key order (libyaml's emitter: 4x PyYAML's own)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False)


STORED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
"""When :func:`store_run` says its run happened."""


def store_run(results: Path, samples: Sequence[Any], run_id: str = "r1") -> None:
    """A finished nightly run of tiny-agent v2 over :data:`CASES` with ``samples``, written to
    ``results`` as a real run writes it (without running anything)."""
    from evals.store import MetricRecord, ResultsStore, RunRecord

    run = RunRecord(
        run_id=run_id, agent="tiny-agent", version="v2", version_hash="h",
        dataset="datasets/tiny-agent/cases.jsonl", dataset_hash="d", trigger="nightly",
        level="constrained", started_at=STORED_AT, contract="policies/tiny-agent.yaml",
        finished_at=STORED_AT, code_version=None, n_cases=len(CASES),
        metrics={"error_rate": MetricRecord("error_rate", 0.0, None, None, 8, 0, "count", 0.95, None)},
    )  # fmt: skip
    ResultsStore(results).write_run(run, list(samples))


OBSERVATIONS = (
    "metric,value,n,low,high,window\n"
    "automation_rate,0.3,400,,,2026-11\n"
    "escalation_rate,0.5,400,,,2026-11\n"
    "rework_rate,0.02,400,,,2026-11\n"
    "cycle_time,3.5,,3.1,4.0,2026-11\n"
)
"""Workflow measurements no worse than :data:`CONTRACT`'s baselines (a promotion's evidence)."""


def promotable_project(base: Path, data: dict[str, Any]) -> Path:
    """:func:`make_project` with ``data`` at version v1, its ``constrained`` level needing a
    person's approval, and :data:`OBSERVATIONS` as its workflow measurements."""
    data = copy.deepcopy(data)
    data["evals"]["target"]["version"] = "v1"
    data["autonomy"]["levels"]["constrained"]["human_approval"] = True
    data["workflow"]["observations"] = "datasets/tiny-agent/workflow.csv"
    contract = make_project(base, data)
    (base / "datasets" / "tiny-agent" / "workflow.csv").write_text(OBSERVATIONS)
    return contract


def resume_without_an_answer(api: str, run_id: object) -> dict[str, Any]:
    """Prefect's answer to resuming a paused flow run with an empty input."""
    request = urllib.request.Request(
        f"{api}/flow_runs/{run_id}/resume",
        data=b"{}",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


ANSWER_PROMPT = (
    "Answer from these passages only.\n{% for c in contexts %}- {{ c }}\n{% endfor %}"
    "Q: {{ input }}\n"
)


def litellm_project(
    tmp: Path,
    url: str,
    contract: dict[str, Any] | None = None,
    prompt: str = ANSWER_PROMPT,
    **target: Any,
) -> Path:
    """:func:`make_project` with a litellm target on ``url`` (key in ``$FAKE_LLM_KEY``)
    and its prompt template; ``target`` overrides the target's settings."""
    data = copy.deepcopy(contract or CONTRACT)
    data["evals"]["target"] = {
        "kind": "litellm",
        "model": "openai/gpt-4o-mini",
        "prompt": "prompts/answer.j2",
        "api_base": url,
        "api_key_env": "FAKE_LLM_KEY",
        **target,
    }
    path = make_project(tmp, data)
    (tmp / "prompts").mkdir(exist_ok=True)
    (tmp / "prompts" / "answer.j2").write_text(prompt, encoding="utf-8")
    return path


@dataclass
class Receiver:
    """Requests received by a local HTTP server."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    """Status codes to answer with, in order; 200 once exhausted."""


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that records JSON POST bodies."""
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            receiver.bodies.append(json.loads(self.rfile.read(length)))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    """Messages received by a local SMTP server."""

    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A minimal real SMTP server on 127.0.0.1 (EHLO/HELO, MAIL, RCPT, DATA, QUIT)."""
    import socketserver

    mailbox = Mailbox(port=0)

    class Handler(socketserver.StreamRequestHandler):
        def send(self, line: str) -> None:
            self.wfile.write((line + "\r\n").encode())

        def handle(self) -> None:
            self.send("220 localhost test SMTP")
            message: dict[str, Any] = {"rcpt": []}
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                command = raw.decode(errors="replace").strip()
                upper = command.upper()
                if upper.startswith(("EHLO", "HELO")):
                    self.send("250 localhost")
                elif upper.startswith("MAIL FROM:"):
                    message["from"] = command[10:].strip()
                    self.send("250 OK")
                elif upper.startswith("RCPT TO:"):
                    message["rcpt"].append(command[8:].strip())
                    self.send("250 OK")
                elif upper == "DATA":
                    self.send("354 end with <CRLF>.<CRLF>")
                    lines = []
                    while (line := self.rfile.readline().decode(errors="replace")) not in (
                        ".\r\n",
                        ".\n",
                        "",
                    ):
                        lines.append(line)
                    message["data"] = "".join(lines)
                    mailbox.messages.append(message)
                    message = {"rcpt": []}
                    self.send("250 queued")
                elif upper == "QUIT":
                    self.send("221 bye")
                    return
                else:
                    self.send("250 OK")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    mailbox.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield mailbox
    finally:
        server.shutdown()
        server.server_close()


def settled_calls(server: FakeOpenAIServer, quiet_s: float) -> int:
    """The server's call count once no call has arrived for ``quiet_s`` seconds."""
    count, since = server.calls, time.monotonic()
    while time.monotonic() - since < quiet_s:
        time.sleep(0.05)
        if server.calls != count:
            count, since = server.calls, time.monotonic()
    return count
