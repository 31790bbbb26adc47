"""Personal data and secrets inside spans never reach Parquet: the same masking as run outputs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from evals.store import TABLES, ResultsStore
from evals.telemetry import TelemetryMasker, ingest
from tests.helpers import CONTRACT, make_project
from tests.otel_agent import collector_file_lines, recorded, request

EMAIL = "jane.roe@mail.example"
CARD = "4111 1111 1111 1111"
KEY = "sk-live-4f1d9a7c2b8e6d5f0a1b2c3d"
COMPANY = "support@tiny.example"
SECRETS = (EMAIL, CARD, KEY, "4111111111111111")


def leaky_trace(tmp_path: Path, service: str = "tiny-agent") -> Path:
    """One chat, one retrieval and one tool call, each carrying an email, a card or a key."""
    with recorded(service=service) as (tracer, exporter):
        with tracer.start_as_current_span(f"chat for {EMAIL}") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute(
                "gen_ai.input.messages",
                json.dumps(
                    [
                        {
                            "role": "user",
                            "parts": [{"type": "text", "content": f"I am {EMAIL}, card {CARD}"}],
                        }
                    ]
                ),
            )
            span.set_attribute(
                "gen_ai.output.messages",
                json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [
                                {"type": "text", "content": f"Write to {COMPANY} or {EMAIL}"}
                            ],
                        }
                    ]
                ),
            )
            span.set_attribute("user.email", EMAIL)
            span.set_attribute("app.notes", [f"key {KEY}", "nothing here"])
            span.set_attribute("gen_ai.response.id", "chatcmpl-8x2")
        with tracer.start_as_current_span("retrieval crm") as span:
            span.set_attribute("gen_ai.operation.name", "retrieval")
            span.set_attribute(
                "gen_ai.retrieval.documents",
                json.dumps([{"id": "n1", "content": f"CRM note: card {CARD}"}]),
            )
        with tracer.start_as_current_span("execute_tool refund") as span:
            span.set_attribute("gen_ai.operation.name", "execute_tool")
            span.set_attribute("gen_ai.tool.name", "refund")
            span.set_attribute(
                "gen_ai.tool.call.arguments", json.dumps({"card": CARD, "email": EMAIL})
            )
            span.record_exception(PermissionError(f"token {KEY} was refused"))
        spans = exporter.get_finished_spans()
    path = tmp_path / "traces.jsonl"
    path.write_text(collector_file_lines(request(spans)))
    return path


def everything_stored(results: Path) -> str:
    store = ResultsStore(results)
    return json.dumps({name: store.table(name).to_pylist() for name in TABLES}, default=str)


def project(tmp_path: Path, **evals: Any) -> Path:
    data: dict[str, Any] = copy.deepcopy(CONTRACT)
    data["evals"]["policy"]["allow"] = ["*@tiny.example"]
    data["evals"].update(evals)
    return make_project(tmp_path / "project", data).parent


def test_span_content_is_masked_with_the_agents_contract_before_it_is_stored(
    tmp_path: Path,
) -> None:
    policies = project(tmp_path)
    results = tmp_path / "results"
    ingest([leaky_trace(tmp_path)], results, masking=TelemetryMasker(policies))
    stored = everything_stored(results)
    for secret in SECRETS:
        assert secret not in stored
    spans = {s.name: s for s in ResultsStore(results).spans()}
    chat = spans["chat for j***@mail.example"]  # even a span's name is masked
    assert chat.input_text == "I am j***@mail.example, card ****1111"
    assert (
        chat.output_text == f"Write to {COMPANY} or j***@mail.example"
    )  # the contract's allowlist
    assert chat.messages[0]["content"] == chat.input_text
    assert chat.attributes["user.email"] == "j***@mail.example"
    assert chat.attributes["app.notes"][1] == "nothing here"
    assert chat.attributes["gen_ai.response.id"] == "chatcmpl-8x2"
    assert spans["retrieval crm"].documents == ("CRM note: card ****1111",)
    tool = spans["execute_tool refund"]
    assert json.loads(tool.tool_arguments or "") == {
        "card": "****1111",
        "email": "j***@mail.example",
    }
    assert KEY[:8] not in json.dumps(tool.events)


def test_agents_with_the_same_rules_keep_only_what_their_own_allowlist_allows(
    tmp_path: Path,
) -> None:
    # Both contracts use default.yaml: the texts they share are scanned once for both, and
    # each agent's own allowlist still decides what it keeps.
    policies = project(tmp_path)  # tiny-agent allows *@tiny.example
    contract = (policies / "tiny-agent.yaml").read_text()
    (policies / "other-agent.yaml").write_text(
        contract.replace("agent: tiny-agent", "agent: other-agent", 1).replace(
            "'*@tiny.example'", "'*@mail.example'"
        )
    )
    masking = TelemetryMasker(policies)
    assert masking.for_agent("tiny-agent")._screen is masking.for_agent("other-agent")._screen
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [leaky_trace(tmp_path / "a"), leaky_trace(tmp_path / "b", service="other-agent")]
    results = tmp_path / "results"
    report = ingest(files, results, masking=masking)
    assert report.ok, report.to_dict()
    chats = {s.agent: s for s in ResultsStore(results).spans() if s.operation == "chat"}
    assert chats["tiny-agent"].output_text == f"Write to {COMPANY} or j***@mail.example"
    assert chats["other-agent"].output_text == f"Write to s***@tiny.example or {EMAIL}"
    assert chats["tiny-agent"].input_text == "I am j***@mail.example, card ****1111"
    assert chats["other-agent"].input_text == f"I am {EMAIL}, card ****1111"
    for stored in chats.values():
        assert CARD not in json.dumps(stored.attributes) + (stored.input_text or "")


@pytest.mark.parametrize(("mode", "kept"), [("raw", True), ("none", False)])
def test_store_outputs_raw_keeps_content_as_sent_and_none_leaves_it_out(
    tmp_path: Path, mode: str, kept: bool
) -> None:
    policies = project(tmp_path, store_outputs=mode)
    results = tmp_path / "results"
    ingest([leaky_trace(tmp_path)], results, masking=TelemetryMasker(policies))
    chat = next(s for s in ResultsStore(results).spans() if s.operation == "chat")
    assert (chat.input_text == f"I am {EMAIL}, card {CARD}") is kept
    assert (chat.input_text is None and chat.messages == []) is not kept
    if not kept:  # attributes and names are still masked: only raw keeps data as sent
        assert EMAIL not in everything_stored(results)


def test_a_contract_that_does_not_load_falls_back_to_the_default_packs_with_a_warning(
    tmp_path: Path,
) -> None:
    policies = project(tmp_path)
    (policies / "tiny-agent.yaml").write_text("agent: tiny-agent\n")
    masking = TelemetryMasker(policies, default_packs=["rules/default.yaml"])
    report = ingest([leaky_trace(tmp_path)], tmp_path / "results", masking=masking)
    assert [w.message.split(";")[-1].strip() for w in report.warnings] == [
        "its telemetry is masked with the default rule packs"
    ]
    for secret in SECRETS:
        assert secret not in everything_stored(tmp_path / "results")


@pytest.mark.model
def test_an_agent_without_a_contract_gets_the_default_packs_names_included(tmp_path: Path) -> None:
    """default.yaml and pii.yaml (with the offline NER model): a name is masked too."""
    root = Path(__file__).resolve().parents[2]
    with recorded(service="unknown-bot") as (tracer, exporter):
        with tracer.start_as_current_span("chat") as span:
            span.set_attribute(
                "gen_ai.input.messages",
                json.dumps([{"role": "user", "content": f"Hi, I am Margaret Thornton, {EMAIL}"}]),
            )
        message = request(exporter.get_finished_spans())
    path = tmp_path / "t.jsonl"
    path.write_text(collector_file_lines(message))
    ingest([path], tmp_path / "results", policies=root / "policies")
    (chat,) = ResultsStore(tmp_path / "results").spans()
    assert chat.agent == "unknown-bot"
    assert "Margaret Thornton" not in (chat.input_text or "")
    assert EMAIL not in (chat.input_text or "")
