"""Fuzzing the contract loader: any mutation of a valid contract loads or is a UserError.

Hypothesis mutates a valid contract (keys dropped, renamed or repeated, values of the wrong
type, out-of-range and non-finite numbers, long and unusual strings) and the loader must
either accept it or raise ``UserError`` whose every problem names the file; any other
exception is a bug. Settings and what they cover: docs/design/hardening.md.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evals.contract import load_contract
from evals.errors import Problem, UserError, display_path
from tests.helpers import CONTRACT

FUZZ_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a nested dict/list, the root excluded."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


PATHS = sorted(_paths(CONTRACT), key=repr)
_FOCUS_KEYS = {
    "agent", "dataset", "outputs", "rule_packs", "target", "kind", "suites", "levels", "level",
    "gates", "min", "max", "error_budget", "rollback", "metrics", "demote_to", "channels",
}  # fmt: skip
FOCUS = [p for p in PATHS if _FOCUS_KEYS & {str(k) for k in p}]
"""Paths where a mistake changes what is read or gated: drawn as often as all the others."""

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=20),
    st.just("x" * 20_000),
    st.sampled_from(
        ["", " ", "\t", "a\x00b", "../../../../etc/passwd", "/etc/passwd", "http://a b", "~"]
    ),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.1, 1.5, -1e9, 1e300]),
    ODD_TEXT,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, tuple[Any, ...], Any]:
    kind = draw(st.sampled_from(["drop", "rename", "set", "duplicate"]))
    path = draw(st.one_of(st.sampled_from(PATHS), st.sampled_from(FOCUS)))
    return kind, path, draw(ODD_TEXT if kind == "rename" else VALUES)


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


def mutate(data: dict[str, Any], kind: str, path: tuple[Any, ...], value: Any) -> str | None:
    """Apply one mutation; a ``duplicate`` is a text edit, returned as the line to repeat."""
    try:
        parent = _parent(data, path)
        key = path[-1]
        if kind == "drop":
            del parent[key]
        elif kind == "set":
            parent[key] = value
        elif kind == "rename" and isinstance(parent, dict):
            parent[str(value)] = parent.pop(key)
        elif (
            kind == "duplicate"
            and isinstance(parent, dict)
            and not isinstance(parent[key], (dict, list))
        ):
            return f"{key}: {yaml.safe_dump(parent[key], default_flow_style=True).strip()}"
    except (KeyError, IndexError, TypeError):
        pass  # an earlier mutation removed or replaced what this one points at
    return None


@pytest.fixture(scope="module")
def project() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "policies").mkdir()
        yield root / "policies" / "tiny-agent.yaml"


@FUZZ_SETTINGS
@given(changes=st.lists(mutations(), min_size=1, max_size=3))
def test_a_mutated_contract_loads_or_is_a_user_error_naming_the_file(
    project: Path, changes: list[tuple[str, tuple[Any, ...], Any]]
) -> None:
    data = copy.deepcopy(CONTRACT)
    repeated = [line for change in changes if (line := mutate(data, *change)) is not None]
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    for line in repeated:
        # Repeat a scalar line where it stands (same indentation), as a careless edit would.
        for existing in text.splitlines():
            if existing.strip() == line.strip() or existing.strip().startswith(
                line.split(":")[0] + ":"
            ):
                text = text.replace(existing + "\n", existing + "\n" + existing + "\n", 1)
                break
    project.write_text(text, encoding="utf-8")
    problems: list[Problem] = []
    try:
        load_contract(project)
    except UserError as exc:
        problems = exc.problems
    for problem in problems:
        assert problem.file.startswith(display_path(project)), problem
        assert "\n" not in str(problem), problem
