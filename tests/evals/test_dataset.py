"""Dataset loaders: JSONL, CSV and Parquet into Cases; errors name file, row and column."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evals.dataset import load_dataset, load_recordings
from evals.errors import UserError
from tests.helpers import CASES, write_jsonl


def messages(path: Path) -> list[str]:
    with pytest.raises(UserError) as info:
        load_dataset(path)
    return [str(p) for p in info.value.problems]


def test_jsonl_csv_and_parquet_give_the_same_cases(tmp_path: Path) -> None:
    jsonl = load_dataset(write_jsonl(tmp_path / "cases.jsonl", CASES))
    csv_path = tmp_path / "cases.csv"
    lines = ["id,input,contexts,tags,prompt_tokens,completion_tokens"]
    for case in CASES:
        contexts = json.dumps(case["contexts"]).replace('"', '""')
        lines.append(f'{case["id"]},"{case["input"]}","{contexts}",refunds,10,5')
    csv_path.write_text("\n".join(lines) + "\n")
    from_csv = load_dataset(csv_path)
    parquet_path = tmp_path / "cases.parquet"
    pq.write_table(pa.Table.from_pylist(CASES), parquet_path)
    from_parquet = load_dataset(parquet_path)
    for other in (from_csv, from_parquet):
        assert [c.id for c in other.cases] == [c.id for c in jsonl.cases]
        assert [c.contexts for c in other.cases] == [c.contexts for c in jsonl.cases]
        assert [c.tags for c in other.cases] == [c.tags for c in jsonl.cases]
    assert from_csv.cases[0].usage is not None
    assert from_csv.cases[0].usage.prompt_tokens == 10


def test_missing_column_names_row_and_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [{"id": "a", "input": "q"}, {"id": "b"}])
    [message] = messages(path)
    assert message.endswith(
        "cases.jsonl: row 2 (line 2): column 'input': required column is missing or empty"
    )


def test_wrong_type_names_the_value(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "cases.jsonl", [{"id": "a", "input": "q", "contexts": "not a list"}]
    )
    [message] = messages(path)
    assert "row 1 (line 1): column 'contexts'" in message
    assert "valid list" in message


def test_unknown_column_gets_a_suggestion(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [{"id": "a", "input": "q", "context": ["x"]}])
    [message] = messages(path)
    assert "column 'context': unknown column (did you mean 'contexts'?)" in message


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n\n")
    [message] = messages(path)
    assert "the dataset has no cases" in message


def test_invalid_json_and_duplicate_ids(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "a", "input": "q"}\n{"id": \n')
    assert "row 2 (line 2): invalid JSON" in messages(path)[0]
    write_jsonl(path, [{"id": "a", "input": "q"}, {"id": "a", "input": "r"}])
    assert "duplicate 'a', first at row 1 (line 1)" in messages(path)[0]


def test_unsupported_suffix_and_missing_file(tmp_path: Path) -> None:
    assert "unsupported file type '.txt'" in messages(tmp_path / "cases.txt")[0]
    assert "file not found" in messages(tmp_path / "absent.jsonl")[0]


def test_recordings_must_point_at_known_cases(tmp_path: Path) -> None:
    dataset = load_dataset(write_jsonl(tmp_path / "cases.jsonl", CASES))
    outputs = write_jsonl(
        tmp_path / "outputs.jsonl",
        [
            {"case_id": "c1", "version": "v1", "output": "x"},
            {"case_id": "zzz", "version": "v1", "output": "y"},
        ],
    )
    with pytest.raises(UserError, match="'zzz' is not a case in"):
        load_recordings(outputs, dataset)


def test_a_line_that_is_not_utf8_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_bytes(
        b'{"id": "a", "input": "fine"}\n\n{"id": "b", "input": "caf\xe9"}\n{"id": "c", "input": "ok"}\n'
    )
    with pytest.raises(UserError, match=r"row 2 \(line 3\): not UTF-8 text"):
        load_dataset(path)
