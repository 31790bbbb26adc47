"""``impactgate schema``: the reference docs are generated from the models and checked."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from evals.contract import LiteLLMTargetSpec
from evals.policy import RULE_KINDS
from evals.reference import reference_pages
from flows.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def copy_project(tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path / "policies", tmp_path / "docs"


def test_the_committed_reference_docs_are_current() -> None:
    pages = reference_pages(ROOT / "docs")
    assert set(pages) >= {ROOT / "docs" / "contract.md", ROOT / "docs" / "policy.md"}
    for path, text in pages.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale; run `impactgate schema`"


def test_a_field_row_carries_its_type_default_bounds_and_docstring() -> None:
    text = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    doc = LiteLLMTargetSpec.model_fields["concurrency"].description
    assert doc is not None
    assert f"| `concurrency` | integer | `8` | ≥ 1, ≤ 1024 | {doc} |" in text
    assert "At `evals.target` with `kind: litellm`." in text
    for name in RULE_KINDS:
        assert f"| `{name}` |" in text, f"rule kind {name} is missing from the reference"


def test_check_fails_on_a_stale_page_and_a_rewrite_keeps_the_prose(tmp_path: Path) -> None:
    policies, docs = copy_project(tmp_path)
    page = docs / "contract.md"
    prose = "A sentence a person wrote above the generated part.\n\n"
    stale = page.read_text(encoding="utf-8").replace(
        "<!-- begin generated", prose + "<!-- begin generated", 1
    )
    page.write_text(
        stale.replace("| `concurrency` | integer | `8` |", "| `concurrency` | integer | `4` |")
    )
    code, _, err = invoke("schema", "--policies", str(policies), "--check")
    assert code == 1
    assert f"{page} is out of date with the models; run `impactgate schema`" in err
    assert "policy.md" not in err, "only the stale page is named"

    code, out, _ = invoke("schema", "--policies", str(policies))
    assert code == 0
    assert f"wrote {page}" in out
    rewritten = page.read_text(encoding="utf-8")
    assert prose in rewritten
    assert "| `concurrency` | integer | `8` |" in rewritten
    assert invoke("schema", "--policies", str(policies), "--check")[0] == 0


def test_a_region_without_its_end_or_with_an_unknown_name_is_a_user_error(tmp_path: Path) -> None:
    policies, docs = copy_project(tmp_path)
    (docs / "extra.md").write_text("# x\n\n<!-- begin generated: contract-refrence -->\n")
    code, _, err = invoke("schema", "--policies", str(policies), "--check")
    assert code == 2
    assert "no end marker '<!-- end generated: contract-refrence -->'" in err
    (docs / "extra.md").write_text(
        "<!-- begin generated: contract-refrence -->\n<!-- end generated: contract-refrence -->\n"
    )
    code, _, err = invoke("schema", "--policies", str(policies), "--docs", str(docs), "--check")
    assert code == 2
    assert (
        "unknown generated region 'contract-refrence' (did you mean 'contract-reference'?)" in err
    )
