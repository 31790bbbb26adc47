"""Label files: what ``impactgate labels export`` writes and ``impactgate labels import`` reads.

One row per judged item, CSV or JSON lines by the file's extension, with an empty ``label``
column for a person to fill in (1: the answer really is unsupported / the output really breaks
a policy; 0: it is fine) and an optional ``note``. Lists and objects (``contexts``, ``claims``,
``findings``) are JSON text in CSV. See docs/calibration.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from evals._io import atomic_open, not_utf8
from evals.contract import Contract
from evals.errors import Problem, UserError, display_path
from evals.store import LabelKind, LabelRecord, ResultsStore, RunRecord, SampleRecord
from evals.vocab import AGENT_PATTERN

__all__ = [
    "COLUMNS",
    "MAX_FILE_MB",
    "ImportResult",
    "answer_id",
    "export_rows",
    "import_labels",
    "read_label_file",
    "stratified",
    "validate_rows",
    "write_label_file",
]

COLUMNS = (
    "id",
    "agent",
    "kind",
    "run_id",
    "case_id",
    "version",
    "question",
    "contexts",
    "answer",
    "judge",
    "judge_score",
    "judge_flag",
    "claims",
    "findings",
    "label",
    "note",
)
"""The columns of a label file, in order; ``label`` and ``note`` are the person's."""

_JSON_COLUMNS = ("contexts", "claims", "findings")

MAX_FILE_MB = 64
"""The largest label file read (a round of a few hundred rows is well under 1 MB)."""

_FORMULA = ("=", "+", "-", "@", "\t", "\r")
"""What a spreadsheet reads as the start of a formula (OWASP's list for CSV injection)."""


def _neutral(cell: Any) -> Any:
    """A CSV cell a spreadsheet shows as text and never runs.

    Text that starts like a formula (after any leading quotes) gets one more leading ``'``;
    :func:`_restored` takes it off again.
    """
    if isinstance(cell, str) and cell.lstrip("'")[:1] in _FORMULA:
        return "'" + cell
    return cell


def _restored(cell: Any) -> Any:
    """A CSV cell as it was before :func:`_neutral` (or as a spreadsheet saved it)."""
    if isinstance(cell, str) and cell.startswith("'") and cell.lstrip("'")[:1] in _FORMULA:
        return cell[1:]
    return cell


_SCORER = {"grounding": "hallucination", "policy": "policy_violation"}
_FALLBACK = {"grounding": "faithfulness"}


def answer_id(kind: LabelKind, case_id: str, answer: str) -> str:
    """The id of a labelled item: the kind, the case and a hash of the answer as stored.

    It names *what was judged*, not the run it came from, so a later run that produces the
    same answer can be checked against the same label.
    """
    digest = hashlib.sha256(answer.encode("utf-8")).hexdigest()[:12]
    return f"{kind}:{case_id}:{digest}"


def stratified(scores: Sequence[float], flags: Sequence[bool], n: int) -> list[int]:
    """Indices of ``n`` items spread across the score range, both sides of the threshold.

    The flagged and the unflagged items each get a share of ``n`` (half each when both have
    enough; the rest goes to the side that has more), chosen evenly by rank within their side,
    so the export covers clear passes, clear failures and the borderline in between.
    """
    order = np.argsort(np.asarray(scores, dtype=float), kind="stable")
    sides = [[int(i) for i in order if flags[i]], [int(i) for i in order if not flags[i]]]
    want = [min(len(sides[0]), n // 2), min(len(sides[1]), n - n // 2)]
    spare = n - sum(want)
    for k in (0, 1):
        extra = min(spare, len(sides[k]) - want[k])
        want[k] += extra
        spare -= extra
    chosen: list[int] = []
    for side, count in zip(sides, want, strict=True):
        if count:
            positions = np.unique(np.round(np.linspace(0, len(side) - 1, count)).astype(int))
            chosen += [side[p] for p in positions]
    return sorted(chosen, key=lambda i: float(scores[i]))


def _support(evidence: Any) -> float | None:
    if not isinstance(evidence, dict):
        return None
    claims = evidence.get("claims")
    if not isinstance(claims, list):
        return None
    probabilities = [c.get("probability") for c in claims if isinstance(c, dict)]
    return min((float(p) for p in probabilities if p is not None), default=1.0)


def export_rows(
    contract: Contract, store: ResultsStore, kind: LabelKind, n: int
) -> tuple[RunRecord, list[dict[str, Any]]]:
    """Up to ``n`` items of the agent's latest run to label, stratified across the judge's scores.

    Grounding: each answer with the judge's support score, claims and reasons; policy: each
    output with its findings. Question, passages and answer are masked like the run's stored
    outputs (personal data and secrets).

    Raises:
        UserError: the agent has no run in the store, or the run did not judge this kind.
    """
    from evals.dataset import load_dataset
    from evals.scorers import build_masker

    agent = contract.agent
    runs = [r for r in store.runs(agent) if r.trigger != "ci"]
    if not runs:
        raise UserError.single(
            display_path(contract.source),
            "agent",
            f"no run of {agent} in {store.root}: run it first (impactgate run {agent})",
        )
    run = runs[-1]
    samples = store.samples(run)
    metric = _SCORER[kind]
    by_case: dict[str, SampleRecord] = {s.case_id: s for s in samples if s.metric == metric}
    if not by_case and kind in _FALLBACK:
        by_case = {s.case_id: s for s in samples if s.metric == _FALLBACK[kind]}
    by_case = {c: s for c, s in by_case.items() if s.error is None and s.output is not None}
    if not by_case:
        suite = "hallucination or grounding" if kind == "grounding" else "policy"
        raise UserError.single(
            display_path(contract.source),
            "evals.suites",
            f"run {run.run_id} of {agent} has no {kind} verdicts on stored answers to label: "
            f"it needs the {suite} suite and evals.store_outputs other than 'none'",
        )
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    cases = {c.id: c for c in dataset.cases}
    ids = [c for c in by_case if c in cases]
    if kind == "grounding":
        scores = [_support(by_case[c].evidence) for c in ids]
        support = [s if s is not None else 1.0 for s in scores]
        flags = [not bool(by_case[c].passed) for c in ids]
    else:
        support = [float(by_case[c].value or 0.0) for c in ids]
        flags = [bool(by_case[c].value) for c in ids]
    chosen = [ids[i] for i in stratified(support, flags, n)]
    masker = build_masker(contract)
    rows = []
    for case_id in chosen:
        sample, case = by_case[case_id], cases[case_id]
        texts = [case.input, *case.contexts, sample.output or ""]
        masked = [m.text for m in masker.mask_many(texts)] if masker.active else texts
        answer = masked[-1]  # stored masked already, unless the contract keeps raw outputs
        evidence = sample.evidence if isinstance(sample.evidence, dict) else {}
        index = ids.index(case_id)
        rows.append(
            {
                "id": answer_id(kind, case_id, answer),
                "agent": agent,
                "kind": kind,
                "run_id": run.run_id,
                "case_id": case_id,
                "version": run.version,
                "question": masked[0],
                "contexts": masked[1:-1],
                "answer": answer,
                "judge": str(evidence.get("judge") or contract.evals.grounding.judge)
                if kind == "grounding"
                else "policy",
                "judge_score": round(support[index], 4) if kind == "grounding" else None,
                "judge_flag": int(flags[index]),
                "claims": [
                    {
                        "text": c.get("text"),
                        "verdict": c.get("verdict"),
                        "probability": c.get("probability"),
                        "reasons": c.get("reasons", []),
                    }
                    for c in evidence.get("claims", [])
                    if isinstance(c, dict)
                ]
                if kind == "grounding"
                else [],
                "findings": evidence.get("violations", []) if kind == "policy" else [],
                "label": None,
                "note": "",
            }
        )
    return run, rows


def write_label_file(rows: Sequence[dict[str, Any]], path: Path, *, replace: bool = True) -> None:
    """Write rows as CSV or JSON lines by the file's extension (atomically).

    ``replace=False`` leaves anything already named ``path`` as it is (FileExistsError).
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise UserError.single("command line", "--out", f"'{path.name}' must end in .csv or .jsonl")
    with atomic_open(path, replace=replace) as out:
        if suffix == ".jsonl":
            for row in rows:
                out.write(json.dumps({k: row.get(k) for k in COLUMNS}, ensure_ascii=False) + "\n")
            return
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: _neutral(
                        json.dumps(row.get(k), ensure_ascii=False)
                        if k in _JSON_COLUMNS
                        else ("" if row.get(k) is None else row.get(k))
                    )
                    for k in COLUMNS
                }
            )


def read_label_file(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line, row)`` pairs of a CSV or JSON-lines label file (JSON columns parsed).

    CSV cells that export neutralised against spreadsheet formulas are read back as exported.

    Raises:
        UserError: the file is missing, not a regular file, larger than :data:`MAX_FILE_MB`,
            has another extension, or a line is not a row.
    """
    shown = display_path(path)
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise UserError.single(shown, "file", "a label file ends in .csv or .jsonl")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UserError.single(shown, "file", "does not exist") from None
    except OSError as exc:
        raise UserError.single(shown, "file", f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError.single(shown, "file", "is not a regular file")
    if info.st_size > MAX_FILE_MB * 2**20:
        raise UserError.single(
            shown,
            "file",
            f"is {info.st_size / 2**20:,.0f} MB; a label file is at most {MAX_FILE_MB} MB "
            "(export fewer rows with --n, or split the file)",
        )
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError.single(shown, "file", "does not exist") from None
    except OSError as exc:
        raise UserError.single(shown, "file", f"cannot be read ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, message = not_utf8(data, exc)
        raise UserError.single(f"{shown}:{line}", "row", message) from None
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    if path.suffix.lower() == ".jsonl":
        for line, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                problems.append(Problem(f"{shown}:{line}", "row", f"not JSON ({exc.msg})"))
                continue
            if not isinstance(value, dict):
                problems.append(Problem(f"{shown}:{line}", "row", "must be a JSON object"))
                continue
            rows.append((line, value))
    else:
        rows, problems = _csv_rows(text, shown)
    if problems:
        raise UserError(problems)
    return rows


def _csv_rows(text: str, shown: str) -> tuple[list[tuple[int, dict[str, Any]]], list[Problem]]:
    """``(line, row)`` pairs of a CSV label file's text, and what is wrong with its rows."""
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[Problem] = []
    reader = csv.DictReader(io.StringIO(text))
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, MAX_FILE_MB * 2**20))  # a long answer is one cell
    try:
        for row in reader:
            line = reader.line_num
            parsed: dict[str, Any] = {k: _restored(v) for k, v in row.items()}
            for column in _JSON_COLUMNS:
                cell = parsed.get(column)
                if isinstance(cell, str) and cell.strip():
                    try:
                        parsed[column] = json.loads(cell)
                    except json.JSONDecodeError:
                        problems.append(
                            Problem(f"{shown}:{line}", column, "must be JSON, as exported")
                        )
            rows.append((line, parsed))
    except csv.Error as exc:
        problems.append(Problem(f"{shown}:{reader.line_num}", "row", f"not CSV ({exc})"))
    finally:
        csv.field_size_limit(limit)
    return rows, problems


def _label(value: Any) -> int | str | None:
    """0 or 1; ``None`` when empty; else the problem in words."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float) and value in (0, 1):
        return int(value)
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    return f"must be 1 (unsupported / a real violation) or 0 (fine), got {value!r}"


def _quoted(text: str) -> str:
    """Untrusted text for a message: quoted, and cut short."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _is_agent(name: str) -> bool:
    return re.fullmatch(AGENT_PATTERN, name) is not None


def _score(value: Any) -> float | str | None:
    """The judge's score as a finite number; ``None`` when empty; else the problem in words."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        return f"must be the judge's score as exported (a number), got {_quoted(str(value))}"
    return number


def validate_rows(
    rows: Sequence[tuple[int, dict[str, Any]]],
    path: Path,
    *,
    by: str,
    at: datetime | None = None,
    known: dict[str, set[str]] | None = None,
    agent: str | None = None,
) -> list[LabelRecord]:
    """Label records of a file's rows, or every problem with them, per row.

    Args:
        rows: ``(line, row)`` pairs (:func:`read_label_file`).
        path: the file, for messages.
        by: who labelled them.
        at: when (default: now).
        known: per agent, the item ids its stored runs can vouch for; ``None`` checks the ids'
            form only (a label file a contract names, read without a store).
        agent: the only agent the rows may be about (a contract's file).

    Raises:
        UserError: one problem per bad row (unknown id, missing or invalid label, a duplicate
            that says otherwise), naming the line and the fix. Nothing is returned half-checked.
    """
    shown = display_path(path)
    at = at or datetime.now(UTC)
    batch = f"{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(6)}"  # one file per import
    problems: list[Problem] = []
    records: dict[str, tuple[int, LabelRecord]] = {}
    if not by.strip():
        raise UserError.single("command line", "--by", "say who labelled the rows")
    for line, row in rows:
        where = f"{shown}:{line}"
        label = _label(row.get("label"))
        if label is None:
            problems.append(Problem(where, "label", "is empty: write 1 (unsupported) or 0 (fine)"))
            continue
        if isinstance(label, str):
            problems.append(Problem(where, "label", label))
            continue
        ident = str(row.get("id") or "")
        kind = ident.partition(":")[0]
        row_agent = str(row.get("agent") or agent or "")
        case_id = str(row.get("case_id") or "")
        answer = str(row.get("answer") or "")
        if kind not in ("grounding", "policy") or not case_id or not row_agent:
            problems.append(
                Problem(
                    where,
                    "id",
                    f"{_quoted(ident)} is not an exported item (need id, agent, case_id and answer as "
                    "impactgate labels export writes them)",
                )
            )
            continue
        if agent is not None and row_agent != agent:
            problems.append(
                Problem(where, "agent", f"is {_quoted(row_agent)}; this file is {agent}'s")
            )
            continue
        if not _is_agent(row_agent):
            problems.append(
                Problem(
                    where,
                    "agent",
                    f"{_quoted(row_agent)} is not an agent's name (lower-case letters, digits and "
                    "dashes, as exported)",
                )
            )
            continue
        if ident != answer_id(kind, case_id, answer):  # type: ignore[arg-type]
            problems.append(
                Problem(
                    where,
                    "answer",
                    f"does not match id {_quoted(ident)}: the answer was edited after export; "
                    "restore it (labels judge the answer as the run stored it)",
                )
            )
            continue
        if known is not None and ident not in known.get(row_agent, set()):
            problems.append(
                Problem(
                    where,
                    "id",
                    f"unknown id {_quoted(ident)}: no stored run of {row_agent} has this answer for "
                    f"{_quoted(case_id)} (export from this results store)",
                )
            )
            continue
        contexts = row.get("contexts") or []
        if isinstance(contexts, str):
            contexts = [contexts]
        if not isinstance(contexts, list) or not all(isinstance(c, str) for c in contexts):
            problems.append(Problem(where, "contexts", "must be a list of passages, as exported"))
            continue
        score = _score(row.get("judge_score"))
        if isinstance(score, str):
            problems.append(Problem(where, "judge_score", score))
            continue
        flag = _label(row.get("judge_flag"))
        record = LabelRecord(
            item_id=ident,
            agent=row_agent,
            kind=kind,  # type: ignore[arg-type]
            run_id=str(row.get("run_id") or ""),
            case_id=case_id,
            version=str(row.get("version") or "") or None,
            question=str(row.get("question") or ""),
            contexts=tuple(contexts),
            answer=answer,
            judge=str(row.get("judge") or ""),
            judge_score=score,
            judge_flag=bool(flag) if isinstance(flag, int) else None,
            label=label,
            note=str(row.get("note") or ""),
            labelled_by=by,
            labelled_at=at,
            batch_id=batch,
            source=shown,
        )
        if ident in records:
            first, earlier = records[ident]
            if earlier.label != label:
                problems.append(
                    Problem(
                        where,
                        "label",
                        f"says {label} but line {first} labels the same item {earlier.label}: "
                        "keep one",
                    )
                )
            continue
        records[ident] = (line, record)
    if problems:
        raise UserError(problems)
    if not records:
        raise UserError.single(shown, "file", "has no labelled rows")
    return [r for _, r in records.values()]


@dataclass(frozen=True)
class ImportResult:
    """What an import stored."""

    new: int
    changed: int
    unchanged: int
    agents: list[str]
    stored: list[LabelRecord]
    """The labels this import wrote (new or changed)."""


def known_items(
    store: ResultsStore, agents: Sequence[str], policies: Path | None = None
) -> dict[str, set[str]]:
    """Per agent, the ids of every answer its stored runs judged (what a label may refer to).

    Answers are masked as an export masks them, with the agent's contract in ``policies``
    (when it is there).
    """
    from evals.contract import load_contract
    from evals.scorers import build_masker

    known: dict[str, set[str]] = {}
    for agent in agents:
        runs = store.runs(agent)
        pairs: list[tuple[LabelKind, SampleRecord]] = []
        for sample in store.samples(runs) if runs else []:
            if sample.output is None:
                continue
            for kind, metrics in (
                ("grounding", ("hallucination", "faithfulness")),
                ("policy", ("policy_violation",)),
            ):
                if sample.metric in metrics:
                    pairs.append((kind, sample))  # type: ignore[arg-type]
        texts = [s.output or "" for _, s in pairs]
        contract_path = policies / f"{agent}.yaml" if policies is not None else None
        if contract_path is not None and contract_path.is_file() and texts:
            masker = build_masker(load_contract(contract_path))
            if masker.active:
                texts = [m.text for m in masker.mask_many(texts)]
        known[agent] = {
            answer_id(kind, s.case_id, text) for (kind, s), text in zip(pairs, texts, strict=True)
        }
    return known


def import_labels(
    path: Path, by: str, store: ResultsStore, policies: Path | None = None
) -> ImportResult:
    """Validate a label file and store its labels; importing the same file again stores nothing.

    Raises:
        UserError: any bad row (nothing is stored then).
    """
    rows = read_label_file(path)
    # Only real agent names reach the store and the contracts folder (a row's agent is
    # untrusted text: "../x" must not name a folder); validate_rows reports the others.
    agents = sorted(a for a in {str(r.get("agent") or "") for _, r in rows} if _is_agent(a))
    records = validate_rows(rows, path, by=by, known=known_items(store, agents, policies))
    new = changed = unchanged = 0
    fresh = []
    for agent in agents:
        current = {r.item_id: r for r in store.labels(agent)}
        for record in (r for r in records if r.agent == agent):
            stored = current.get(record.item_id)
            if stored is None:
                new += 1
            elif stored.same_label(record):
                unchanged += 1
                continue
            else:
                changed += 1
            fresh.append(record)
    if fresh:
        store.write_labels(fresh)
    return ImportResult(new, changed, unchanged, agents, fresh)
