"""How fast are the policy rule packs? Outputs scored per second through the policy scorer.

    .venv/bin/python benchmarks/policy_speed.py [--write]

Builds 1,000 cases from the public policy data (``../shared/benchmarks/policy/``): each output
is about 80 words (consecutive presidio sentences, so personal data is in them), each input a
deepset prompt and each case has two 60-word contexts. They go through the production path —
``policy_violation`` over one batch with ``run_scorer``, as a run's scoring task does — with
five configurations: every rule pack without a model (default, injection rules, leakage,
trajectory); the same with the injection classifier, on a first run (an empty decision cache
each time) and on a rerun (the cache warm); the NER pack alone; and everything. The
models are loaded and warmed up before timing. The median of three timed runs is reported.
"""

from __future__ import annotations

import argparse
import atexit
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals._env import apply_offline_defaults  # noqa: E402

apply_offline_defaults()

from results_file import write_section  # noqa: E402

from evals.dataset import Case  # noqa: E402
from evals.policy import PolicyEngine, RulePack, load_rule_pack  # noqa: E402
from evals.policy._decisions import DecisionCache  # noqa: E402
from evals.policy._injection import InjectionClassifier  # noqa: E402
from evals.scorers import policy_violation, run_scorer  # noqa: E402
from evals.targets import Output  # noqa: E402

DATA = ROOT.parent / "shared" / "benchmarks" / "policy"
RULES = ROOT / "policies" / "rules"
SYSTEM_PROMPT = (
    "You are the billing assistant of Northwind. Answer only from the passages you are given, "
    "never reveal account numbers, and escalate refunds above 500 dollars to a person."
)


def texts(name: str) -> list[str]:
    with (DATA / f"{name}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle if line.strip()]


def chunks(sentences: list[str], words: int) -> list[str]:
    out, current = [], []
    for sentence in sentences:
        current.append(sentence)
        if sum(len(s.split()) for s in current) >= words:
            out.append(" ".join(current))
            current = []
    return out


def build(n: int) -> tuple[list[Case], list[Output]]:
    outputs = chunks(texts("presidio_synth_pii"), 80)
    contexts = chunks(texts("openai_moderation"), 60)
    prompts = texts("deepset_prompt_injections")
    cases, produced = [], []
    for i in range(n):
        case = Case(
            id=f"c{i}",
            input=prompts[i % len(prompts)],
            contexts=[contexts[(2 * i) % len(contexts)], contexts[(2 * i + 1) % len(contexts)]],
            metadata={"tool_calls": [{"name": "lookup_invoice", "arguments": {"id": str(i)}}]},
        )
        cases.append(case)
        produced.append(Output(case.id, outputs[i % len(outputs)]))
    return cases, produced


def engine(packs: list[str], classifier: InjectionClassifier | None = None) -> PolicyEngine:
    """The packs, with the injection classifier on when one is given (off otherwise)."""
    loaded: list[RulePack] = []
    for name in packs:
        pack = load_rule_pack(RULES / f"{name}.yaml")
        if classifier is None:
            pack = pack.model_copy(
                update={"rules": [r.model_copy(update={"classifier": False}) for r in pack.rules]}
            )
        loaded.append(pack)
    return PolicyEngine(
        loaded,
        canaries=["ZX-CANARY-7731"],
        system_prompt=SYSTEM_PROMPT,
        tools=["lookup_invoice", "issue_refund"],
        max_tool_depth=1,
        max_tool_calls=10,
        disable=["tool.arguments"] if "trajectory" in packs else [],
        classifier=classifier,
    )


def timed(
    packs: list[str], mode: str, cases: list[Case], outputs: list[Output], scratch: Path
) -> float:
    """Median seconds of three runs over all cases.

    ``mode``: ``rules`` (no classifier), ``cold`` (the classifier with an empty decision
    cache for every run), ``warm`` (a cache that already holds every text, as on a rerun).
    """

    def build_engine(run: str) -> PolicyEngine:
        if mode == "rules":
            return engine(packs)
        cache = DecisionCache(scratch / f"{mode}-{run}.sqlite")
        return engine(packs, InjectionClassifier(cache=cache))

    warm_up = build_engine("warm-up" if mode == "cold" else "shared")
    run_scorer("policy_violation", policy_violation(engine=warm_up), cases[:50], outputs[:50])
    if mode == "warm":
        run_scorer("policy_violation", policy_violation(engine=warm_up), cases, outputs)
    runs = []
    for i in range(3):
        scorer = policy_violation(engine=build_engine("shared" if mode == "warm" else str(i)))
        started = time.perf_counter()
        run_scorer("policy_violation", scorer, cases, outputs)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    cases, outputs = build(args.cases)
    words = statistics.mean(len((o.text or "").split()) for o in outputs)
    without_ner = ["default", "injection", "leakage", "trajectory"]
    everything = ["pii", "injection", "leakage", "trajectory"]
    configs = [
        ("rule packs without a model: default + injection (rules only) + leakage + trajectory",
         without_ner, "rules", "≥ 200"),
        ("the same, with the injection classifier (MiniLM; input and both contexts), first run",
         without_ner, "cold", "—"),
        ("the same, rerun on the same inputs and contexts (decision cache warm)",
         without_ner, "warm", "—"),
        ("pii.yaml (rules + NER) alone", ["pii"], "rules", "—"),
        ("everything (pii + injection with classifier + leakage + trajectory), first run",
         everything, "cold", "—"),
    ]  # fmt: skip
    lines = [
        "## Policy rule packs: speed",
        "",
        f"Command: `.venv/bin/python benchmarks/policy_speed.py --cases {args.cases} --write`  ",
        f"Run: {datetime.now(UTC).strftime('%Y-%m-%d')}, {platform.machine()}, 2 cores shared "
        "with other work. Each case: an ~80-word output, a deepset prompt as input, two "
        "60-word contexts, one tool call; scored through `policy_violation` with `run_scorer` "
        "in one batch; median of 3 runs after warm-up.",
        "",
        "| configuration | cases | output words (mean) | seconds | outputs/s | target |",
        "|---|---|---|---|---|---|",
    ]
    scratch = Path(tempfile.mkdtemp(prefix="policy-speed-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    for n, (label, packs, mode, target) in enumerate(configs):
        folder = scratch / f"config-{n}"  # caches are never shared between configurations
        folder.mkdir()
        seconds = timed(packs, mode, cases, outputs, folder)
        rate = len(cases) / seconds
        lines.append(
            f"| {label} | {len(cases)} | {words:.0f} | {seconds:.2f} | **{rate:.0f}** | {target} |"
        )
        print(lines[-1], flush=True)
    lines += [
        "",
        "The ≥ 200 target is for the rule packs without a model. The injection classifier reads",
        "every input and context with all-MiniLM-L6-v2 (three texts a case here), which costs",
        "far more than the rules on a first run; its decisions are cached by a hash of the text,",
        "so a nightly rerun or a CI gate over the same golden inputs and contexts reads none of",
        "them again. `classifier: false` on a rule turns it off where the first run matters.",
        "The 2 cores are shared with other work, so rates vary by about a third between runs.",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section("policy_speed", text)


if __name__ == "__main__":
    main()
