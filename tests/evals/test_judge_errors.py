"""A judge's model that cannot be loaded is the user's to fix: one problem, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.errors import UserError, display_path
from evals.judges._nli import NLIGroundingJudge

pytestmark = pytest.mark.model


@pytest.mark.parametrize(
    "files",
    [
        {"config.json": '{"id2label": '},
        {"config.json": '{"model_type": "bert", "id2label": {"0": "entailment"}}'},
    ],
    ids=["corrupt-config", "no-weights"],
)
def test_a_broken_nli_model_folder_is_a_user_error(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UserError) as info:
        NLIGroundingJudge(str(tmp_path))
    [problem] = info.value.problems
    assert problem.file == display_path(tmp_path)
    assert problem.field == "model"
    assert problem.message.startswith("cannot load the cross-encoder: ")
    assert problem.message.endswith("copy the whole model folder again")
