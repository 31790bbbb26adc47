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


def test_a_csv_line_that_is_not_utf8_is_named_by_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_bytes(b"id,input\na,fine\nb,caf\xe9\nc,ok\n")
    assert messages(path) == [
        f"{path}: row 2 (line 3): not UTF-8 text (byte 6 of the line); save the file as UTF-8"
    ]


def test_a_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_bytes("\ufeffid,input\na,question\n".encode())
    assert [c.id for c in load_dataset(path).cases] == ["a"]


def test_a_csv_column_given_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    path.write_text("id,input,input\na,first,second\n")
    assert messages(path) == [
        f"{path}: header (line 1): column 'input': appears twice; only one of the columns would "
        "be read, so remove one"
    ]


def test_malformed_csv_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.csv"
    # A stray quote would otherwise swallow every row after it into one cell.
    path.write_text('id,input\na,fine\nb,"unterminated\nc,ok\nd,ok\n')
    assert messages(path) == [
        f"{path}: row 2 (line 3): malformed CSV: unexpected end of data; a quote opened in this "
        "row is never closed"
    ]


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ({"id": "   ", "input": "a question"}, "id"),
        ({"id": "a", "input": " \t "}, "input"),
    ],
)
def test_a_blank_id_or_input_is_refused(tmp_path: Path, row: dict[str, str], column: str) -> None:
    path = write_jsonl(tmp_path / "cases.jsonl", [row])
    assert messages(path) == [
        f"{path}: row 1 (line 1): column '{column}': is blank (only spaces); give some text "
        f"(got {row[column]!r})"
    ]


def test_a_non_finite_number_in_a_row_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "a", "input": "q", "latency_s": NaN}\n')
    [message] = messages(path)
    assert "row 1 (line 1): column 'latency_s': Input should be a finite number" in message


def test_deeply_nested_json_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text('{"id": "a", "input": "q"}\n\n{"id": "b", "metadata": ' + "[" * 5_000 + "\n")
    [message] = messages(path)
    assert message == f"{path}: row 2 (line 3): nested too deeply to be a case; flatten the row"
