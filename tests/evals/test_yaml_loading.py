"""Reading YAML with libyaml's parser gives what PyYAML's own parser gives.

``evals.contract._load`` reads contracts and rule packs with libyaml's scanner and parser when
PyYAML was built with it (six times as fast), composing, checking and constructing in Python
as before, and reads a file libyaml refuses again with PyYAML's parser, so a problem is worded
the same on every machine. These tests hold the two readings together: every YAML file of the
repository and its malformed corpus, and YAML that Hypothesis writes in every style, give the
same data, the same line numbers and the same problems either way. Where they part is
documented below: libyaml reads a few things as the YAML spec says that PyYAML refuses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evals.contract import _load
from evals.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

pytestmark = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML built without libyaml")


def _marks(node: yaml.Node | None, out: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    if node is None:
        return out
    out.append((type(node).__name__, node.tag, node.start_mark.line, node.start_mark.column))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _marks(key, out)
            _marks(value, out)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _marks(item, out)
    return out


def _read(path: Path) -> tuple[str, Any]:
    """What ``load_yaml`` makes of a file: its data and node lines, or its problems."""
    try:
        data, node = _load.load_yaml(path)
    except UserError as exc:
        return "problems", [str(p) for p in exc.problems]
    return "data", (repr(data), _marks(node, []))  # repr: NaN equals itself


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    assert _load._LOADERS[0] is not _load._Loader  # libyaml's parser comes first
    fast = _read(path)
    with monkeypatch.context() as patched:
        patched.setattr(_load, "_LOADERS", (_load._Loader,))
        pure = _read(path)
    return fast, pure


def _repository_yaml() -> Iterator[Path]:
    for folder in ("policies", "examples", "tests/corpus", "docs"):
        for path in sorted((ROOT / folder).rglob("*.yaml")):
            # Refused as too deep either way: at once past libyaml's 1,000 levels, after
            # half a second by PyYAML's parser (tests/flows/test_corpus.py checks it).
            if path.name != "deeply-nested.yaml":
                yield path
    yield ROOT / "prefect.yaml"


def test_every_yaml_file_of_the_repository_reads_the_same_with_either_parser(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = list(_repository_yaml())
    refused = 0
    for path in files:
        fast, pure = _both(path, monkeypatch)
        assert fast == pure, path
        refused += fast[0] == "problems"
    assert len(files) > 40
    assert refused > 10  # the corpus's malformed files: their problems are worded alike


_KEYS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30),
    st.sampled_from(["yes", "no", "~", "null", "0x1f", "1e3", "2026-12-03", "-", "? a", "#"]),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(
    data=_DOCUMENTS,
    flow=st.sampled_from([None, True, False]),
    width=st.sampled_from([20, 80, 10_000]),
    unicode=st.booleans(),
    start=st.booleans(),
)
def test_yaml_written_in_any_style_reads_the_same_with_either_parser(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data: Any,
    flow: bool | None,
    width: int,
    unicode: bool,
    start: bool,
) -> None:
    text = yaml.safe_dump(
        data, default_flow_style=flow, width=width, allow_unicode=unicode, explicit_start=start
    )
    path = tmp_path / "written.yaml"
    path.write_text(text, encoding="utf-8")
    fast, pure = _both(path, monkeypatch)
    assert fast == pure
    if fast[0] == "data":
        assert repr(yaml.safe_load(text)) == fast[1][0]
    else:  # only a non-finite number is refused
        assert any("not a finite number" in p for p in fast[1])


_PIECES = st.sampled_from(
    [
        "a", "1", "-1.5", " ", "  ", "\n", "\t", ": ", "- ", "? ", "[", "]", "{", "}", ",",
        "'", '"', "#", "|", ">", "&x ", "*x", "!", "!!str ", "!!int ", "!!float ", "!!bool ",
        "!!timestamp ", "!!binary ", "!!map ", "!!seq ", "!!set ", "---\n", "...\n", ".nan",
        "\u00e9", "\ufeff", "\x85", "\u2028", "%YAML 1.1\n", "key: ", "<<: ",
    ]
)  # fmt: skip


@SETTINGS
@given(pieces=st.lists(_PIECES, min_size=1, max_size=24), pure=st.booleans())
def test_any_text_is_read_or_refused_with_a_problem_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pieces: list[str], pure: bool
) -> None:
    """No text, however broken, gets past ``load_yaml`` as anything but data or problems."""
    if pure:
        monkeypatch.setattr(_load, "_LOADERS", (_load._Loader,))
    path = tmp_path / "any.yaml"
    path.write_text("".join(pieces), encoding="utf-8")
    kind, found = _read(path)
    if kind == "problems":
        assert found
        assert all(p.startswith(f"{path}:") or p.startswith(str(path)) for p in found), found
        assert all("\n" not in p for p in found)


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("x: !!float abc\n", "x", "'abc' is tagged !!float but is not a number"),
        ("x: !!float ''\n", "x", "'' is tagged !!float but is not a number"),
        ("a:\n  x: !!int 1.5\n", "a.x", "'1.5' is tagged !!int but is not a whole number"),
        ("x: [!!bool maybe]\n", "x.0", "'maybe' is tagged !!bool but is not true or false"),
        ("x: !!timestamp soon\n", "x", "'soon' is tagged !!timestamp but is not a date or time"),
        ("!!int k: 1\n", "k", "'k' is tagged !!int but is not a whole number"),
        ("x: !!float .inf\n", "x", "'.inf' is not a finite number"),
    ],
)
def test_a_value_that_does_not_fit_its_tag_is_a_problem_at_its_line(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    path = tmp_path / "typed.yaml"
    path.write_text("first: 1\n" + text, encoding="utf-8")
    with pytest.raises(UserError) as raised:
        _load.load_yaml(path)
    [problem] = raised.value.problems
    assert problem.file == f"{path}:{2 if field != 'a.x' else 3}"
    assert problem.field == field
    assert problem.message.startswith(message)


def test_where_libyaml_reads_what_pyyaml_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The known differences, each libyaml's reading being the YAML spec's."""
    path = tmp_path / "spec.yaml"
    path.write_text("name: a\tb\nplain: !\n", encoding="utf-8")  # a tab inside a plain scalar
    data, _ = _load.load_yaml(path)
    assert data == {"name": "a\tb", "plain": ""}  # "!" marks a plain scalar a string
    monkeypatch.setattr(_load, "_LOADERS", (_load._Loader,))
    with pytest.raises(UserError, match="cannot start any token"):
        _load.load_yaml(path)


def test_floats_keep_their_value_through_either_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "numbers.yaml"
    values = [0.1, 1e-300, 2.5e300, -0.0, math.pi, 1 / 3]
    path.write_text(yaml.safe_dump({"v": values}), encoding="utf-8")
    fast, pure = _both(path, monkeypatch)
    assert fast == pure
    data, _ = _load.load_yaml(path)
    assert data == {"v": values}


def test_a_document_nested_past_libyamls_limit_is_refused_as_pyyaml_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused at once by libyaml's parser; by PyYAML's on running out of stack."""
    path = tmp_path / "deep.yaml"
    path.write_text("".join(f"{' ' * i}a:\n" for i in range(1200)), encoding="utf-8")
    fast, pure = _both(path, monkeypatch)
    problem = f"{path}:1: (top level): nested too deeply to be a contract or rule pack"
    assert fast == pure == ("problems", [problem])
