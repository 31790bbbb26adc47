"""Atomic writes and JSON-lines rows read with line-numbered problems."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from evals._io import atomic_open, read_jsonl_rows
from evals.errors import UserError


def test_atomic_open_creates_folders_and_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.jsonl"
    with atomic_open(target) as out:
        out.write("first\n")
        assert not target.exists(), "nothing appears under the name before the block ends"
    assert target.read_text(encoding="utf-8") == "first\n"
    with atomic_open(target) as out:
        out.write("zweite Fassung ✓\n")
    assert target.read_text(encoding="utf-8") == "zweite Fassung ✓\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.jsonl"]


def test_atomic_open_without_replace_never_clobbers_what_has_the_name(tmp_path: Path) -> None:
    kept = tmp_path / "kept.txt"
    kept.write_text("mine\n", encoding="utf-8")
    with pytest.raises(FileExistsError), atomic_open(kept, replace=False) as out:
        out.write("new\n")
    assert kept.read_text(encoding="utf-8") == "mine\n"

    dangling = tmp_path / "link.txt"
    dangling.symlink_to(tmp_path / "elsewhere" / "target.txt")
    with pytest.raises(FileExistsError), atomic_open(dangling, replace=False) as out:
        out.write("new\n")
    assert dangling.is_symlink()
    assert not (tmp_path / "elsewhere").exists()

    racing = tmp_path / "racing.txt"

    def write_while_another_writes() -> None:
        with atomic_open(racing, replace=False) as out:
            out.write("new\n")
            racing.write_text("written meanwhile\n", encoding="utf-8")

    with pytest.raises(FileExistsError):
        write_while_another_writes()
    assert racing.read_text(encoding="utf-8") == "written meanwhile\n"

    fresh = tmp_path / "fresh.txt"
    with atomic_open(fresh, replace=False) as out:
        out.write("new\n")
    assert fresh.read_text(encoding="utf-8") == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fresh.txt",
        "kept.txt",
        "link.txt",
        "racing.txt",
    ], "no temporary file left behind"


def test_atomic_open_writes_bytes(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    with atomic_open(target, "wb") as out:
        out.write(b"\x00\xff")
    assert target.read_bytes() == b"\x00\xff"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("old\n", encoding="utf-8")

    def write_half() -> None:
        with atomic_open(target) as out:
            out.write("half of the new\n")
            raise RuntimeError("scoring broke")

    with pytest.raises(RuntimeError, match="scoring broke"):
        write_half()
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]


class Row(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str


def read(path: Path) -> list[dict[str, object]]:
    return read_jsonl_rows(path, Row, expected="text", field="--input")


def test_rows_keep_every_field_and_skip_blank_lines(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_bytes(b'\xef\xbb\xbf{"text": "a", "id": 1}\n\n  \n{"text": "b", "extra": [1]}\n')
    assert read(source) == [{"text": "a", "id": 1}, {"text": "b", "extra": [1]}]


def test_each_bad_line_is_named_and_at_most_twenty_are_reported(tmp_path: Path) -> None:
    source = tmp_path / "rows.jsonl"
    source.write_text('{"text": 1}\n[1]\n{oops\n' + '{"txt": ""}\n' * 30, encoding="utf-8")
    with pytest.raises(UserError) as raised:
        read(source)
    problems = raised.value.problems
    assert len(problems) == 20
    assert [(p.field, p.message) for p in problems[:4]] == [
        ("line 1: field 'text'", "Input should be a valid string"),
        ("line 2", "is a JSON list; each line must be an object with text"),
        ("line 3", "invalid JSON: Expecting property name enclosed in double quotes at column 2"),
        ("line 4: field 'text'", "required"),
    ]


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        (None, "--input", "file not found"),
        ("", "", "no rows; expected JSON lines with text"),
        (
            b'{"text": "caf\xe9"}\n',
            "line 1",
            "not UTF-8 text (byte 14 of the line); save the file as UTF-8",
        ),
    ],
)
def test_missing_empty_and_non_utf8_files_are_user_errors(
    tmp_path: Path, content: str | bytes | None, field: str, message: str
) -> None:
    source = tmp_path / "rows.jsonl"
    if isinstance(content, bytes):
        source.write_bytes(content)
    elif content is not None:
        source.write_text(content, encoding="utf-8")
    with pytest.raises(UserError) as raised:
        read(source)
    [problem] = raised.value.problems
    assert (problem.field, problem.message) == (field, message)


def test_a_folder_is_not_a_rows_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--input: is a folder; pass a JSONL file"):
        read(tmp_path)
