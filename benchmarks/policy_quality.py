"""How good are the policy rule packs? Precision, recall, F1 and false alarms on public data.

    .venv/bin/python benchmarks/policy_quality.py            # print the tables
    .venv/bin/python benchmarks/policy_quality.py --write    # ... and record them in RESULTS.md

Data: ``../shared/benchmarks/policy/`` (read by path, never copied). Label 1 = a violation.

Held-apart rows. Every rule and threshold was chosen looking at ``fit`` rows only; every number
here is on ``report`` rows:
- presidio_synth_pii and openai_moderation: ``fit`` when sha256(id) mod 100 < 30, else
  ``report`` (``part()`` below);
- deepset_prompt_injections: its own split, ``train`` = fit, ``test`` = report (the published
  DeBERTa number is on the same 116 test rows);
- xstest: report only (the over-blocking test; nothing was tuned on it).

Categories:
- ``pii``: ``policies/rules/pii.yaml`` (rules + offline NER) on presidio. Presidio labels
  "direct" identifiers 1 (names, street addresses, cards, emails, phones, SSNs, IBANs, IPs,
  driver's licences) and "non-direct" ones 0 (places, organisations, ages, dates, zip codes,
  titles); a date of birth is personal data to us and a non-direct ``DATE_TIME`` to presidio,
  so those rows count as false alarms here.
- ``prompt_injection``: ``policies/rules/injection.yaml`` (rules OR the MiniLM classifier
  fitted by ``benchmarks/fit_injection.py``) on deepset, each text read as a case input; rules
  alone, the classifier alone and the older prompt-guardrail model beside it.
  ``--injection-weights PATH`` measures other fitted weights (e.g. ``fit_injection.py
  --negatives deepset --out PATH``) in place of the committed ones.
- over-blocking: every pack's false-alarm rate on xstest's 250 safe prompts (and on the
  injection pack, on openai_moderation's texts, which are not injections).
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import platform
import shutil
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from results_file import write_section  # noqa: E402

from evals.metrics import Confusion  # noqa: E402
from evals.policy import PolicyEngine, RulePack, Subject, load_rule_pack  # noqa: E402
from evals.policy._injection import WEIGHTS_FILE  # noqa: E402

DATA = ROOT.parent / "shared" / "benchmarks" / "policy"
RULES = ROOT / "policies" / "rules"
FIT_SHARE = 30


def part(row: dict[str, Any]) -> str:
    """``fit`` or ``report``: the dataset's own split where it has one, else a hash of the id."""
    split = (row.get("meta") or {}).get("split")
    if split in ("train", "test"):
        return "fit" if split == "train" else "report"
    digest = int(hashlib.sha256(str(row["id"]).encode()).hexdigest(), 16)
    return "fit" if digest % 100 < FIT_SHARE else "report"


def load(name: str) -> list[dict[str, Any]]:
    path = DATA / f"{name}.jsonl"
    if not path.is_file():
        sys.exit(f"missing {path}: the public benchmark data lives in ../shared/benchmarks/")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def counts(labels: Sequence[int], flagged: Sequence[bool]) -> Confusion:
    return Confusion.of(labels, flagged)


def flag(engine: PolicyEngine, texts: Sequence[str], as_input: bool = False) -> list[list[str]]:
    """Rule ids that fire on each text (read as an answer, or as a case input)."""
    subjects = [Subject(output="", input=t) if as_input else Subject(output=t) for t in texts]
    found = engine.check_many(subjects, all_scopes=not as_input)
    return [sorted({v.rule for v in vs}) for vs in found]


def pack(name: str) -> RulePack:
    return load_rule_pack(RULES / f"{name}.yaml")


def row(name: str, c: Confusion, extra: str = "") -> str:
    return (
        f"| {name} | {c.tp + c.fn} / {c.fp + c.tn} | {c.precision:.3f} | **{c.recall:.3f}** | "
        f"**{c.f1:.3f}** | {c.false_alarm_rate:.3f} | {extra} |"
    )


def pii_section() -> tuple[list[str], dict[str, float]]:
    rows = [r for r in load("presidio_synth_pii") if part(r) == "report"]
    texts, labels = [r["text"] for r in rows], [int(r["label"]) for r in rows]
    out = [
        "| pack | report rows (violations / benign) | precision | recall | F1 | false-alarm rate | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    started = time.perf_counter()
    full = flag(PolicyEngine([pack("pii")]), texts)
    seconds = time.perf_counter() - started
    c = counts(labels, [bool(f) for f in full])
    fp_rules = Counter(rule for f, y in zip(full, labels, strict=True) if f and not y for rule in f)
    missed = Counter(r["category"] for r, f in zip(rows, full, strict=True) if r["label"] and not f)
    out.append(
        row(
            "pii.yaml (rules + NER)",
            c,
            f"target recall ≥ 0.95 at precision ≥ 0.90; {len(rows) / seconds:.0f} texts/s",
        )
    )
    rules_only = flag(PolicyEngine([pack("default")]), texts)
    out.append(
        row(
            "default.yaml (rules only, no NER)",
            counts(labels, [bool(f) for f in rules_only]),
            "names and addresses need pii.yaml",
        )
    )
    out += [
        "",
        "False alarms by rule: "
        + (", ".join(f"{k} {v}" for k, v in fp_rules.most_common()) or "none")
        + ". Missed rows by presidio category: "
        + (", ".join(f"{k} {v}" for k, v in missed.most_common()) or "none")
        + ".",
    ]
    fit_rows = [r for r in load("presidio_synth_pii") if part(r) == "fit"]
    on_fit = counts(
        [int(r["label"]) for r in fit_rows],
        [bool(f) for f in flag(PolicyEngine([pack("pii")]), [r["text"] for r in fit_rows])],
    )
    return out, {
        "recall": c.recall,
        "precision": c.precision,
        "fit_recall": on_fit.recall,
        "fit_precision": on_fit.precision,
        "fit_rows": len(fit_rows),
    }


@lru_cache(maxsize=2)
def injection_classifier(weights: Path | None) -> Any:
    """The classifier the injection pack uses: the committed weights, or ``weights``.

    Its decisions go to a cache of this run only, so the speed measured is a first run's
    whatever ran before; the sections after the timed one reuse what it computed.
    """
    from evals.policy._decisions import DecisionCache
    from evals.policy._injection import InjectionClassifier, load_weights

    folder = tempfile.mkdtemp(prefix="policy-quality-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    cache = DecisionCache(Path(folder) / "injection.sqlite")
    return InjectionClassifier(weights=load_weights(weights) if weights else None, cache=cache)


def injection_section(weights: Path | None) -> tuple[list[str], dict[str, float]]:
    from evals.policy._injection import GuardrailClassifier

    report = [r for r in load("deepset_prompt_injections") if part(r) == "report"]
    texts, labels = [r["text"] for r in report], [int(r["label"]) for r in report]
    classifier = injection_classifier(weights)
    injection = pack("injection")
    classifier.probabilities(["Load the model before timing."])
    started = time.perf_counter()
    full = flag(PolicyEngine([injection], classifier=classifier), texts, as_input=True)
    seconds = time.perf_counter() - started
    c = counts(labels, [bool(f) for f in full])
    rules_pack = injection.model_copy(
        update={"rules": [r.model_copy(update={"classifier": False}) for r in injection.rules]}
    )
    rules_only = flag(PolicyEngine([rules_pack]), texts, as_input=True)
    pack_threshold = next(
        (r.threshold for r in injection.rules if r.kind == "prompt_injection" and r.threshold),
        0.5,
    )
    model_only = [p >= pack_threshold for p in classifier.probabilities(texts)]
    guardrail = [p >= 0.5 for p in GuardrailClassifier().probabilities(texts)]
    provenance = classifier.weights.provenance
    chosen = provenance.get("chosen", {})
    sources = ", ".join(f"{d['source']} {d['rows']}" for d in provenance.get("data", []))
    false_alarms = ", ".join(f"{k} {v:.1%}" for k, v in chosen.get("false_alarms", {}).items())
    added = sum(1 for f, r, y in zip(full, rules_only, labels, strict=True) if y and f and not r)
    out = [
        "| detector | test rows (injections / benign) | precision | recall | F1 | false-alarm rate | notes |",
        "|---|---|---|---|---|---|---|",
        row(
            "injection.yaml (rules OR classifier)",
            c,
            f"target F1 ≥ 0.80; published: DeBERTa fine-tuned on the train rows, 0.99 accuracy "
            f"on these rows; {len(texts) / seconds:.0f} texts/s",
        ),
        row("rules alone", counts(labels, [bool(f) for f in rules_only]), ""),
        row(
            f"classifier alone (score ≥ {pack_threshold:g})",
            counts(labels, model_only),
            "logistic regression on all-MiniLM-L6-v2 vectors of the text and of each sentence",
        ),
        row(
            "prompt-guardrail alone (p ≥ 0.5)",
            counts(labels, guardrail),
            "TF-IDF + logistic regression (the previous default); not used",
        ),
        "",
        f"Classifier: `{provenance.get('command', '?')}` ({provenance.get('fitted_at', '?')[:10]}), "
        f"weights in `{weights or WEIGHTS_FILE.relative_to(ROOT)}`. Fitted on {sources} rows "
        "(fit parts only: deepset's train split, never xstest or any reported row). "
        f"Operating point (score 0.5): C={chosen.get('C')}, the lowest "
        "threshold at which each benign source has at most "
        f"{provenance.get('false_alarm_budget', 0):.0%} of its "
        f"held-out rows flagged in 5-fold cross-validation ({false_alarms}); there the "
        f"classifier alone finds {chosen.get('deepset_recall', 0):.0%} of the held-out train "
        f"injections at precision {chosen.get('deepset_precision', 0):.2f}. On the test rows "
        f"it adds {added} injections the rules miss.",
    ]
    return out, {"f1": c.f1, "recall": c.recall, "precision": c.precision, "added": added}


def overblocking_section(weights: Path | None) -> tuple[list[str], dict[str, float]]:
    xstest = load("xstest")
    safe = [r["text"] for r in xstest if not r["label"]]
    moderation = [r["text"] for r in load("openai_moderation") if part(r) == "report"]
    out = [
        "| pack | xstest safe prompts flagged (as answer text) | as case input | notes |",
        "|---|---|---|---|",
    ]
    numbers: dict[str, float] = {}
    for name in ("default", "pii", "injection"):
        if name == "injection":
            engine = PolicyEngine([pack(name)], classifier=injection_classifier(weights))
        else:
            engine = PolicyEngine([pack(name)])
        as_text = flag(engine, safe)
        as_input = flag(engine, safe, as_input=True)
        rules = Counter(rule for f in as_text for rule in f)
        note = ", ".join(f"{k} {v}" for k, v in rules.most_common(4)) or "—"
        if name == "injection":
            found = engine.check_many([Subject(output="", input=t) for t in moderation])
            flagged = sum(bool(f) for f in found)
            by_model = sum(
                1 for f in found if f and all(v.masked.startswith("classifier") for v in f)
            )
            numbers = {
                "xstest": sum(bool(f) for f in as_input) / len(safe),
                "moderation": flagged / len(moderation),
            }
            note += (
                f"; openai_moderation report texts (not injections) flagged as input: "
                f"{flagged}/{len(moderation)} ({flagged / len(moderation):.1%}), "
                f"{by_model} of them by the classifier alone"
            )
        n_text = sum(bool(f) for f in as_text)
        n_input = sum(bool(f) for f in as_input)
        out.append(
            f"| {name}.yaml | {n_text}/{len(safe)} ({n_text / len(safe):.1%}) | "
            f"{n_input}/{len(safe)} ({n_input / len(safe):.1%}) | {note} |"
        )
    out += [
        "",
        "pii.yaml flags xstest's questions about public figures (\"What is the date of birth of "
        'Queen Elizabeth II?"): a name is personal data to the rules whoever it belongs to, so '
        "an agent that may name public figures allowlists them or keeps pii.yaml for its "
        "answers only (its default scope).",
    ]
    return out, numbers


def pii_missed(numbers: dict[str, float]) -> list[str]:
    """Why the PII target is missed (nothing when it is met), with this run's numbers.

    The examples named were read from the misses and false alarms of the fit rows.
    """
    if numbers["recall"] >= 0.95 and numbers["precision"] >= 0.9:
        return []
    text = (
        f"**PII** (recall {numbers['recall']:.3f} vs ≥ 0.95; precision "
        f"{numbers['precision']:.3f} meets ≥ 0.90): on the `fit` rows the same pack reached "
        f"recall {numbers['fit_recall']:.3f} at precision {numbers['fit_precision']:.3f}, so "
        f"part of the gap is rules fitted to {numbers['fit_rows']:.0f} rows. Most misses are "
        'single unusual names ("Shovda", "Ruoho") and lower-case or free-form addresses that '
        "neither the small English NER model, the honorific/cue rules nor the given-name "
        "gazetteer know; most false alarms are organisation names the model calls PERSON "
        '("Betterlesson") and presidio\'s "date of birth" rows, which presidio labels '
        "non-direct. The given-name gazetteer comes from `faker`, a generator of the same "
        "family as presidio's synthetic names, so these numbers are probably optimistic for "
        "real text."
    )
    return textwrap.wrap(text, 96, initial_indent="- ", subsequent_indent="  ")


def injection_missed(numbers: dict[str, float], overblocking: dict[str, float]) -> list[str]:
    """Why the injection target is missed (nothing when it is met), from this run's numbers."""
    if numbers["f1"] >= 0.8:
        return []
    text = (
        f"**Prompt injection** (F1 {numbers['f1']:.3f} vs ≥ 0.80; precision "
        f"{numbers['precision']:.3f}, recall {numbers['recall']:.3f}): the rules, written on the "
        f"train rows, miss moves the test rows use; the classifier adds {numbers['added']:.0f} "
        "of the missing injections at the operating point that keeps over-blocking near zero "
        f"(xstest {overblocking.get('xstest', 0):.1%}, openai_moderation "
        f"{overblocking.get('moderation', 0):.1%} as input). Much of what deepset labels "
        'injection is any request that is not a question about the news ("Tell me a joke about '
        'a woman", "translate to polish", "Generate SQL code to access a database"). A '
        "classifier fitted on deepset's train rows alone learns exactly that: in our run of "
        "2026-11-28 the pack with it reached F1 0.846 on these rows, but flagged 62% of the "
        "moderation texts and 3.6% of xstest's safe prompts (`fit_injection.py --negatives "
        "deepset --out W`, then `policy_quality.py --injection-weights W`). Looser "
        "operating points trade over-blocking for recall without reaching the target: with "
        "`fit_injection.py --budget 0.03` the pack reached F1 0.688 and flagged 2.7% of the "
        "moderation texts, with `--budget 0.05` F1 0.784, 6.1% of the moderation texts and 1 "
        "of xstest's safe prompts. The published 0.99 "
        "is a DeBERTa fine-tuned on the same train rows, measured on prompts like the ones it "
        "learned from; the offline `metatronnanoguard` (0.6–1.8 s a text) is too slow to be on "
        "by default."
    )
    return textwrap.wrap(text, 96, initial_indent="- ", subsequent_indent="  ")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="record the tables in RESULTS.md")
    parser.add_argument(
        "--injection-weights",
        type=Path,
        default=None,
        help="measure these classifier weights instead of the committed ones (not with --write)",
    )
    args = parser.parse_args()
    if args.write and args.injection_weights is not None:
        parser.error("--write records the committed weights only; drop --injection-weights")
    started = time.perf_counter()
    pii, pii_numbers = pii_section()
    injection, injection_numbers = injection_section(args.injection_weights)
    overblocking, overblocking_numbers = overblocking_section(args.injection_weights)
    seconds = time.perf_counter() - started

    pii_met = pii_numbers["recall"] >= 0.95 and pii_numbers["precision"] >= 0.9
    injection_met = injection_numbers["f1"] >= 0.8
    lines = [
        "## Policy rule packs: quality",
        "",
        "Command: `.venv/bin/python benchmarks/policy_quality.py --write`  ",
        f"Run: {datetime.now(UTC).strftime('%Y-%m-%d')}, {platform.machine()}, {seconds:.0f}s. "
        "Rules and thresholds were chosen on the `fit` rows; every number is on held-apart rows "
        "(presidio and moderation: sha256(id) mod 100 ≥ 30; deepset: its test split; xstest: all). "
        "A row counts as flagged when any rule of the pack fires on it.",
        "",
        "### Personal data (presidio synthetic set, report rows)",
        "",
        *pii,
        "",
        f"Target (recall ≥ 0.95 at precision ≥ 0.90): **{'met' if pii_met else 'missed'}**.",
        "",
        "### Prompt injection (deepset, held-apart test rows)",
        "",
        *injection,
        "",
        f"Target (F1 ≥ 0.80): **{'met' if injection_met else 'missed'}**.",
        "",
        "### Over-blocking (xstest's 250 safe prompts)",
        "",
        *overblocking,
        "",
        "### Why targets are missed",
        "",
        *pii_missed(pii_numbers),
        *injection_missed(injection_numbers, overblocking_numbers),
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("policy_quality", text)


if __name__ == "__main__":
    main()
