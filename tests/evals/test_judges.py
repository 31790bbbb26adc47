"""The offline grounding judge on cases where the right answer is plain."""

from __future__ import annotations

import pytest

from evals.judges import OfflineGroundingJudge, numbers, split_sentences

pytestmark = pytest.mark.model

CONTEXTS = [
    "Refunds are issued to the original payment method within 5 business days. "
    "Store credit is available immediately after the return is scanned.",
    "Return shipping is free for orders over $50. Fabrikam Home accepts returns of unused items.",
]


@pytest.fixture(scope="module")
def judge() -> OfflineGroundingJudge:
    return OfflineGroundingJudge(support_threshold=0.5)


def test_sentence_splitting_keeps_abbreviations_and_decimals() -> None:
    assert split_sentences(
        "It costs $4.99, e.g. for one item. Next! Is it?\n- a bullet\n2. another"
    ) == [
        "It costs $4.99, e.g. for one item.",
        "Next!",
        "Is it?",
        "a bullet",
        "another",
    ]


def test_numbers_are_normalised() -> None:
    assert numbers("$1,200.00 in 30 days, 15%") == {"1200", "30", "15"}


def test_faithful_paraphrase_is_supported(judge: OfflineGroundingJudge) -> None:
    [verdict] = judge.judge(
        [("Your refund goes back to the original payment method within 5 business days.", CONTEXTS)]
    )
    assert verdict.support_share == 1.0
    assert verdict.claims[0].evidence.startswith("Refunds are issued")


def test_a_changed_number_is_contradicted_and_says_why(judge: OfflineGroundingJudge) -> None:
    [verdict] = judge.judge(
        [("Refunds are issued to the original payment method within 10 business days.", CONTEXTS)]
    )
    [claim] = verdict.unsupported
    assert claim.verdict == "contradicted"
    assert "number(s) not in any context: 10" in claim.reasons
    assert claim.evidence.startswith("Refunds are issued"), "the passage it contradicts"


def test_a_flipped_negation_is_contradicted(judge: OfflineGroundingJudge) -> None:
    [verdict] = judge.judge([("Refunds are not issued to the original payment method.", CONTEXTS)])
    [claim] = verdict.unsupported
    assert "the claim negates what its passage states" in claim.reasons


def test_an_invented_name_is_unsupported(judge: OfflineGroundingJudge) -> None:
    [verdict] = judge.judge([("Returns are also free for Fabrikam Platinum members.", CONTEXTS)])
    [claim] = verdict.unsupported
    assert any("fabrikam platinum" in reason for reason in claim.reasons)


def test_greetings_are_not_claims_and_no_contexts_is_an_error(judge: OfflineGroundingJudge) -> None:
    [verdict] = judge.judge([("Sure! Happy to help.", CONTEXTS)])
    assert verdict.claims == []
    assert verdict.support_share == 1.0
    assert verdict.skipped == ["Sure!", "Happy to help."]
    [empty] = judge.judge([("Refunds take 5 days.", [])])
    assert empty.error == "the case has no contexts to ground in"


def test_an_unrelated_claim_is_unsupported(judge: OfflineGroundingJudge) -> None:
    [verdict] = judge.judge(
        [("Our warehouse robots are powered by solar panels on the roof.", CONTEXTS)]
    )
    assert verdict.support_share == 0.0


def test_a_judge_remembers_only_its_latest_verdicts(
    judge: OfflineGroundingJudge, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evals.judges._offline as offline

    monkeypatch.setattr(offline, "MEMO_SIZE", 2)
    items = [(f"Returns of unused items are accepted, order {i}.", CONTEXTS) for i in range(3)]
    first = judge.judge(items)
    assert len(judge._memo) == 2, "a long run's verdicts are not all kept"
    assert judge.judge(items[1:]) == first[1:], "the latest are answered from memory"
    assert judge.judge(items[:1]) == first[:1], "an evicted one is judged again, the same way"
