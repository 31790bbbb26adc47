"""The run journal and the output cache: what survives a crash, and what comes back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from evals.dataset import Usage
from evals.store import OutputCache, RunHeader, RunJournal
from evals.targets import Output

HEADER = RunHeader(
    run_id="20261128T010203Z-abcdef01",
    agent="tiny-agent",
    contract="policies/tiny-agent.yaml",
    version="3f2a9c1d0b7e",
    version_hash="3f2a9c1d0b7e" + "0" * 52,
    dataset="datasets/tiny-agent/cases.jsonl",
    dataset_hash="d" * 64,
    trigger="nightly",
    level="constrained",
    started_at=datetime(2026, 11, 28, 1, 2, 3, tzinfo=UTC),
)
ANSWER = Output(
    "c1",
    "Refunds take 5 days.",
    latency_s=0.25,
    usage=Usage(prompt_tokens=40, completion_tokens=6),
    model="openai/gpt-4o-mini",
    attempts=2,
    tool_calls=({"name": "lookup", "arguments": "{}"},),
)


def test_a_journal_survives_a_half_written_line(tmp_path: Path) -> None:
    journal = RunJournal.start(tmp_path, HEADER)
    journal.record(ANSWER, "hash-c1")
    journal.record(Output("c2", None, error="HTTP 503 (after 4 attempts)", attempts=4), "hash-c2")
    journal.close()
    with journal.path.open("a", encoding="utf-8") as handle:
        handle.write('{"case_hash": "hash-c3", "output": {"case_id": "c3", "te')  # killed here

    [header] = RunJournal.in_progress(tmp_path)
    assert header == HEADER
    reopened = RunJournal.open(tmp_path, HEADER.run_id)
    assert reopened.resumed == 2
    outputs = reopened.outputs()
    assert outputs["c1"] == ("hash-c1", ANSWER)
    assert outputs["c2"][1].error == "HTTP 503 (after 4 attempts)"
    reopened.discard()
    assert RunJournal.in_progress(tmp_path) == []


def test_the_output_cache_returns_outputs_as_measured_and_marked_cached(tmp_path: Path) -> None:
    cache = OutputCache(tmp_path / "outputs.sqlite")
    cache.put("v1", "hash-c1", ANSWER)
    cache.put("v1", "hash-c2", Output("c2", None, error="timed out"))
    cache.close()

    again = OutputCache(tmp_path / "outputs.sqlite")
    assert len(again) == 1, "errors are not cached"
    found = again.get_many("v1", [("c1", "hash-c1"), ("c2", "hash-c2")])
    assert list(found) == ["c1"]
    hit = found["c1"]
    assert hit.cached
    assert (hit.latency_s, hit.usage, hit.attempts) == (0.25, ANSWER.usage, 2)
    assert again.get_many("v1", [("c1", "other-content")]) == {}
    assert again.get_many("v2", [("c1", "hash-c1")]) == {}
