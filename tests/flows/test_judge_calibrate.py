"""``impactgate judge grounding --calibrate``: fit the threshold on labelled rows, then judge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.cli.main import cli

POLICY = (
    "Refunds are issued to the original payment method within 5 business days. "
    "Store credit is available immediately after the return is scanned. "
    "Return shipping is free for orders over $50."
)
DELIVERY = (
    "Standard delivery takes three to five working days. Express delivery arrives the next "
    "working day when ordered before 2 pm. Deliveries are not made on public holidays."
)
SUPPORTED = [
    (POLICY, "Refunds go back to the original payment method within 5 business days."),
    (POLICY, "Store credit is available as soon as the return is scanned."),
    (POLICY, "Return shipping is free on orders over $50."),
    (DELIVERY, "Standard delivery takes three to five working days."),
    (DELIVERY, "Express delivery arrives the next working day if you order before 2 pm."),
    (DELIVERY, "We do not deliver on public holidays."),
]
UNSUPPORTED = [
    (POLICY, "Refunds are issued within 30 business days by cheque."),
    (POLICY, "Store credit expires after one year and cannot be combined with coupons."),
    (POLICY, "Return shipping costs $15 unless you are a Gold member."),
    (DELIVERY, "Standard delivery takes two weeks and needs a signature."),
    (DELIVERY, "Express delivery is free for students at Contoso University."),
    (DELIVERY, "Our drivers also assemble furniture on request."),
]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _labelled() -> list[dict[str, object]]:
    return [
        {"id": f"{kind}{i}", "question": "q", "context": context, "answer": answer, "label": label}
        for label, kind, pairs in ((0, "s", SUPPORTED), (1, "u", UNSUPPORTED))
        for i, (context, answer) in enumerate(pairs)
    ]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.model
def test_calibrate_fits_on_labels_prints_the_estimate_and_judges_the_input_at_it(
    tmp_path: Path,
) -> None:
    labelled = _write(tmp_path / "labelled.jsonl", _labelled())
    source = _write(
        tmp_path / "rows.jsonl",
        [
            {"id": "a", "context": POLICY, "answer": "Refunds take 5 business days."},
            {"id": "b", "context": [DELIVERY], "answer": "Delivery is free on Sundays in Paris."},
        ],
    )
    target = tmp_path / "scored.jsonl"
    code, _, err = invoke(
        "judge", "grounding", "--input", str(source), "--output", str(target),
        "--calibrate", str(labelled),
    )  # fmt: skip
    assert code == 0, err
    found = re.search(r"support threshold (\d\.\d{4}); cross-validated balanced accuracy", err)
    assert found, err
    assert re.search(r"balanced accuracy \d\.\d\d \[\d\.\d\d, \d\.\d\d\]", err)
    assert "12 labels: 6 unsupported, 6 supported" in err
    threshold = float(found.group(1))
    scored = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in scored] == ["a", "b"]
    for row in scored:
        assert row["threshold"] == pytest.approx(threshold, abs=5e-5)
        assert row["label_pred"] == int(row["score"] < row["threshold"])
        assert all(c["supported"] == (c["probability"] >= row["threshold"]) for c in row["claims"])
    assert [r["label_pred"] for r in scored] == [0, 1]


@pytest.mark.model
def test_calibrate_refuses_labels_of_one_kind(tmp_path: Path) -> None:
    labelled = _write(tmp_path / "labelled.jsonl", [r for r in _labelled() if r["label"] == 0])
    source = _write(tmp_path / "rows.jsonl", _labelled()[:1])
    code, _, err = invoke(
        "judge", "grounding", "--input", str(source), "--output", str(tmp_path / "o.jsonl"),
        "--calibrate", str(labelled),
    )  # fmt: skip
    assert code == 2
    assert "labelled.jsonl: label: 6 labels, 0 unsupported and 6 supported" in err
    assert "label more answers the owner judges unsupported" in err
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "0.5"], "--threshold/--calibrate: give one"),
        (["--objective", "false_alarm_budget"], "needs --budget"),
        (["--budget", "0.1"], "applies to --objective false_alarm_budget only"),
    ],
)
def test_calibration_options_are_checked_before_any_judging(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    labelled = _write(tmp_path / "labelled.jsonl", _labelled())
    source = _write(tmp_path / "rows.jsonl", _labelled()[:1])
    code, _, err = invoke(
        "judge", "grounding", "--input", str(source), "--output", str(tmp_path / "o.jsonl"),
        "--calibrate", str(labelled), *extra,
    )  # fmt: skip
    assert code == 2
    assert message in err


def test_objective_without_calibrate_is_refused(tmp_path: Path) -> None:
    source = _write(tmp_path / "rows.jsonl", _labelled()[:1])
    code, _, err = invoke(
        "judge", "grounding", "--input", str(source), "--output", str(tmp_path / "o.jsonl"),
        "--objective", "false_alarm_budget", "--budget", "0.1",
    )  # fmt: skip
    assert code == 2
    assert "apply only with --calibrate LABELLED.jsonl" in err


def test_a_bad_label_names_its_line(tmp_path: Path) -> None:
    rows = _labelled()
    rows[2]["label"] = "yes"
    del rows[4]["label"]
    labelled = _write(tmp_path / "labelled.jsonl", rows)
    source = _write(tmp_path / "rows.jsonl", _labelled()[:1])
    code, _, err = invoke(
        "judge", "grounding", "--input", str(source), "--output", str(tmp_path / "o.jsonl"),
        "--calibrate", str(labelled),
    )  # fmt: skip
    assert code == 2
    assert (
        "labelled.jsonl: line 3: field 'label': must be 0 or 1 (1 = unsupported), got 'yes'" in err
    )
    assert "labelled.jsonl: line 5: field 'label': required" in err
