"""What happened in each example agent's queue, day by day: the work items and their outcomes.

Every day has its own random stream, seeded by ``(agent, seed, date)``, so a day's tickets
(ids, times, questions, trace ids) are the same whichever ``end`` the history is drawn for;
only the story's curves (adoption, escalation) depend on where the day sits in the window.
Rates are drawn with stratified uniforms (one draw per equal slice of [0, 1), shuffled), so a
day's counts stay within one of their expectation: the story reads clearly over four weeks
while each day still varies.

The stories (docs/telemetry.md, "Example telemetry"):

- billing-assistant: adoption ramps 0.05 → 0.66 over eleven weeks and holds; escalation
  falls 0.36 → 0.28; CSAT rises with adoption (agent-resolved tickets score higher), cost
  per ticket falls 6.2 → 2.8, cycle time falls (agent-resolved tickets close in 1-4 h).
  Halfway through the window Northwind launches its Copilot AI add-on, and questions about
  how it is billed grow to about a quarter of the tickets over the last four weeks. Neither
  the golden set nor the help centre covers them: retrieval returns the nearest billing
  passages and the agent's answers invent prices, credits and settings (:data:`ADD_ON_CASES`).
  These tickets draw from their own random stream, so the other numbers do not move.
- returns-concierge: adoption ramps 0.05 → 0.50, but NPS (~21), return-to-exchange
  conversion (~0.12) and cost per return (~5.6) do not move: adoption without outcome.
- account-support: adoption 0.32 → 0.46; escalation stays ~0.45 (over its gate); time to
  regain account access improves a little as more of it is handled by the agent.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "ADD_ON_CASES",
    "STORIES",
    "Case",
    "Item",
    "Story",
    "day_items",
    "load_cases",
    "phone_number",
]

ROOT = Path(__file__).resolve().parents[2]
_HOUR_WEIGHTS = (1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 8, 7, 7, 8, 8, 7, 6, 5, 4, 3, 2, 2, 1)


@dataclass(frozen=True)
class Case:
    """A golden case: the question, its passages, the agent's answer and its topic."""

    id: str
    input: str
    contexts: tuple[str, ...]
    answer: str
    category: str


@dataclass
class Item:
    """One work item (ticket) and, when the agent handled it, what the trace needs."""

    id: str
    opened: datetime
    case: Case
    handled: bool = False
    escalated: bool = False
    reopened: bool = False
    closed: datetime | None = None
    resolver: str | None = None
    question: str = ""
    contact: dict[str, str] = field(default_factory=dict)
    """Personal data the customer wrote (account-support): ``email``, ``phone``, ``name``."""
    outcomes: dict[str, str] = field(default_factory=dict)
    seed: str = ""
    """Seeds the item's trace (ids, timings): the same item gets the same trace."""


@dataclass(frozen=True)
class Story:
    """One agent's curves and parameters."""

    agent: str
    prefix: str
    adoption: tuple[float, float]
    """Share of items the agent handles on the first day and from ``adoption_ramp`` on."""
    adoption_ramp: float
    """Where in the window adoption reaches its final value (0-1)."""
    escalation: tuple[float, float]
    """Share of agent-handled items handed to a person, first day and from the ramp on."""
    escalation_ramp: float
    rework: tuple[float, float]
    """Share reopened: human-handled, agent-handled."""
    human_hours: float
    """Median cycle time of an item a person handles from the start."""
    escalated_hours: float
    """Median cycle time of an item the agent handed to a person."""
    agent_hours: tuple[float, float]
    """Range of the cycle time of an item the agent resolved (customer confirms or it
    auto-closes)."""
    people: tuple[str, ...]
    """Roles of the people who resolve items (the export's ``resolved_by``)."""
    outcome_columns: tuple[str, ...]

    def adoption_at(self, t: float) -> float:
        """Adoption at position ``t`` (0 first day, 1 last day) of the window."""
        return _ramp(self.adoption, self.adoption_ramp, t)

    def escalation_at(self, t: float) -> float:
        """Escalation among agent-handled items at position ``t``."""
        return _ramp(self.escalation, self.escalation_ramp, t)


def _ramp(values: tuple[float, float], until: float, t: float) -> float:
    start, end = values
    return start + (end - start) * min(1.0, t / until)


def stratified(rng: random.Random, n: int) -> list[float]:
    """``n`` uniforms, one in each ``1/n`` slice of [0, 1), in random order."""
    draws = [(i + rng.random()) / n for i in range(n)]
    rng.shuffle(draws)
    return draws


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _mean_one(rng: random.Random, sigma: float) -> float:
    """A positive factor with mean 1 (log-normal)."""
    return math.exp(rng.gauss(-sigma * sigma / 2, sigma))


@cache
def _scale(mean: float) -> tuple[float, ...]:
    """Cumulative probabilities over 1-5 with the given mean (an exponential tilt)."""
    low, high = -5.0, 5.0
    for _ in range(60):
        beta = (low + high) / 2
        weights = [math.exp(beta * k) for k in range(1, 6)]
        m = sum(k * w for k, w in zip(range(1, 6), weights, strict=True)) / sum(weights)
        low, high = (beta, high) if m < mean else (low, beta)
    total = sum(weights)
    cumulative, running = [], 0.0
    for w in weights:
        running += w / total
        cumulative.append(running)
    return tuple(cumulative)


def _inverse(cumulative: Sequence[float], u: float, first: int) -> int:
    for value, edge in enumerate(cumulative, start=first):
        if u < edge:
            return value
    return first + len(cumulative) - 1


_NPS = (0.01, 0.01, 0.02, 0.03, 0.03, 0.06, 0.08, 0.15, 0.16, 0.20, 0.25)
"""Share answering 0-10: promoters (9-10) 0.45, detractors (0-6) 0.24, NPS 21."""


def _nps_cumulative(shift: float) -> list[float]:
    """The NPS answer distribution with ``shift`` moved from passives to promoters."""
    shares = list(_NPS)
    shares[7] -= shift / 2
    shares[8] -= shift / 2
    shares[9] += shift / 2
    shares[10] += shift / 2
    out, running = [], 0.0
    for s in shares:
        running += s
        out.append(running)
    return out


def _class(item: Item) -> str:
    if not item.handled:
        return "human"
    return "escalated" if item.escalated else "agent"


def _by_class(items: Sequence[Item]) -> dict[str, list[Item]]:
    groups: dict[str, list[Item]] = {"human": [], "agent": [], "escalated": []}
    for item in items:
        groups[_class(item)].append(item)
    return groups


def _money(value: float) -> str:
    return f"{value:.2f}"


def _respondents(items: Sequence[Item], rng: random.Random, share: float) -> list[Item]:
    """The closed items whose customer answered the survey (``share`` of them)."""
    closed = [i for i in items if i.closed is not None]
    return [i for i, u in zip(closed, stratified(rng, len(closed)), strict=True) if u < share]


def _billing(items: Sequence[Item], rng: random.Random) -> None:
    cost = {"human": 6.5, "agent": 0.35, "escalated": 1.6}
    for item in items:
        if item.closed is not None:
            factor = _mean_one(rng, 0.3)
            item.outcomes["handling_cost_usd"] = _money(cost[_class(item)] * factor)
    csat_mean = {"human": 4.10, "agent": 4.65, "escalated": 4.25}
    for kind, members in _by_class(items).items():
        group = _respondents(members, rng, 0.30)  # 30% of each kind: the mix stays as handled
        for item, u in zip(group, stratified(rng, len(group)), strict=True):
            item.outcomes["csat"] = str(_inverse(_scale(csat_mean[kind]), u, 1))


def _returns(items: Sequence[Item], rng: random.Random) -> None:
    cost = {"human": 5.7, "agent": 5.4, "escalated": 5.9}
    closed = [i for i in items if i.closed is not None]
    for item in closed:
        factor = _mean_one(rng, 0.25)
        item.outcomes["handling_cost_usd"] = _money(cost[_class(item)] * factor)
    requests = [i for i in closed if i.case.category == "returns"]
    for item, u in zip(requests, stratified(rng, len(requests)), strict=True):
        item.outcomes["converted_to_exchange"] = "true" if u < 0.12 else "false"
    nps = _nps_cumulative(rng.gauss(0.0, 0.03))
    respondents = _respondents(items, rng, 0.25)
    for item, u in zip(respondents, stratified(rng, len(respondents)), strict=True):
        item.outcomes["nps"] = str(_inverse(nps, u, 0))


_ACCESS = frozenset({"sign-in", "security"})


def _account(items: Sequence[Item], rng: random.Random) -> None:
    minutes = {"human": 8.6, "agent": 1.2, "escalated": 7.4}
    for item in items:
        if item.closed is None:
            continue
        kind = _class(item)
        item.outcomes["handling_minutes"] = f"{minutes[kind] * _mean_one(rng, 0.35):.1f}"
        if item.case.category in _ACCESS:
            cycle = (item.closed - item.opened).total_seconds() / 3600
            item.outcomes["access_restored_hours"] = f"{cycle * rng.uniform(0.85, 1.0):.1f}"


STORIES: dict[str, Story] = {
    "billing-assistant": Story(
        agent="billing-assistant",
        prefix="BIL",
        adoption=(0.05, 0.66),
        adoption_ramp=0.85,
        escalation=(0.36, 0.28),
        escalation_ramp=0.62,
        rework=(0.048, 0.035),
        human_hours=19.0,
        escalated_hours=9.0,
        agent_hours=(1.0, 4.0),
        people=("tier1", "tier1", "tier1", "billing-specialist"),
        outcome_columns=("csat", "handling_cost_usd"),
    ),
    "returns-concierge": Story(
        agent="returns-concierge",
        prefix="RET",
        adoption=(0.05, 0.50),
        adoption_ramp=0.85,
        escalation=(0.33, 0.30),
        escalation_ramp=0.6,
        rework=(0.05, 0.045),
        human_hours=30.0,
        escalated_hours=14.0,
        agent_hours=(1.0, 5.0),
        people=("returns-desk", "returns-desk", "warehouse-lead"),
        outcome_columns=("nps", "converted_to_exchange", "handling_cost_usd"),
    ),
    "account-support": Story(
        agent="account-support",
        prefix="ACC",
        adoption=(0.32, 0.46),
        adoption_ramp=1.0,
        escalation=(0.45, 0.45),
        escalation_ramp=1.0,
        rework=(0.04, 0.04),
        human_hours=24.0,
        escalated_hours=14.0,
        agent_hours=(0.5, 3.0),
        people=("tier1", "tier1", "trust-and-safety"),
        outcome_columns=("handling_minutes", "access_restored_hours"),
    ),
}

_OUTCOMES: dict[str, Callable[[Sequence[Item], random.Random], None]] = {
    "billing-assistant": _billing,
    "returns-concierge": _returns,
    "account-support": _account,
}

_FIRST = ("Maria", "James", "Aisha", "Chen", "Olivia", "Mateo", "Priya", "Lukas", "Sofia", "Noah")
_LAST = ("Garcia", "Smith", "Khan", "Wei", "Jones", "Rossi", "Patel", "Novak", "Silva", "Brown")
_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com")


def phone_number(rng: random.Random) -> str:
    """A made-up US phone number in the 555 range (a customer's, or one in CRM notes)."""
    return f"+1 {rng.randrange(201, 989)} 555 {rng.randrange(100, 999):04d}"


def _contact(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    return {
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{rng.randrange(10, 99)}@{rng.choice(_DOMAINS)}",
        "phone": phone_number(rng),
    }


def _with_contact(question: str, contact: dict[str, str], rng: random.Random) -> str:
    forms = (
        f"{question} My email is {contact['email']}.",
        f"{question} You can call me back on {contact['phone']}.",
        f"Hi, this is {contact['name']} ({contact['email']}). {question}",
        f"{question} Please text me at {contact['phone']} or write to {contact['email']}.",
    )
    return rng.choice(forms)


@cache
def load_cases(agent: str) -> tuple[Case, ...]:
    """The agent's golden cases with its answers.

    billing-assistant's answers come from the example agent itself
    (``examples.billing_assistant.agent``); the replayed agents' from their recorded ``v2``
    outputs (``datasets/<agent>/outputs.jsonl``), falling back to the reference answer.
    """
    folder = ROOT / "datasets" / agent
    rows = [
        json.loads(line)
        for line in (folder / "cases.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    answers: dict[str, str] = {}
    outputs = folder / "outputs.jsonl"
    if outputs.is_file():
        for line in outputs.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("version") == "v2":
                    answers[record["case_id"]] = record["output"]
    if agent == "billing-assistant":
        from evals.dataset import Case as GoldenCase
        from examples.billing_assistant.agent import answer

        for row in rows:
            golden = GoldenCase(id=row["id"], input=row["input"], contexts=row["contexts"])
            answers[row["id"]] = answer(golden)["output"]
    return tuple(
        Case(
            id=row["id"],
            input=row["input"],
            contexts=tuple(row.get("contexts") or ()),
            answer=answers.get(row["id"], row.get("reference", "")),
            category=(row.get("tags") or ["general"])[0],
        )
        for row in rows
    )


_USAGE = (
    "Usage-based charges, such as extra storage and API overage, are billed in arrears on the "
    "next invoice. Each usage line shows the metered quantity and the unit price."
)
_PLANS = (
    "Northwind Cloud has three plans: Starter at $12 per user per month, Team at $24 per user "
    "per month, and Business at $39 per user per month. Prices are shown before tax."
)
_SEATS = (
    "Admins can add seats under Settings > Members. New seats are charged immediately on a "
    "prorated basis for the rest of the billing period."
)
_CREDITS = (
    "Account credits are applied automatically to your next invoice before your payment method "
    "is charged. You can see your current credit balance under Billing > Overview."
)
ADD_ON_TOPIC = "ai-add-on"
"""The category of the billing questions the golden set misses."""

ADD_ON_CASES: tuple[Case, ...] = tuple(
    Case(f"bill-addon-{k}", question, contexts, answer, ADD_ON_TOPIC)
    for k, (question, contexts, answer) in enumerate(
        (
            (
                "How is the Copilot AI add-on billed? Is it per seat or per request?",
                (_USAGE, _PLANS),
                "The Copilot add-on is billed per seat at $9 per user per month, and each seat "
                "includes 1,000 AI requests.",
            ),
            (
                "We turned on the Copilot add-on last week. What will it cost us per month?",
                (_PLANS, _SEATS),
                "Copilot costs $9 per user per month on every plan, charged from the day you "
                "turned it on.",
            ),
            (
                "There's a Copilot AI credits line on our invoice. What are AI credits and how "
                "are they charged?",
                (_USAGE, _CREDITS),
                "AI credits are prepaid Copilot requests: every seat gets 1,000 a month, and "
                "extra credits cost $0.01 each.",
            ),
            (
                "What happens when we run out of Copilot AI credits? Do we get charged for the "
                "extra?",
                (_USAGE, _CREDITS),
                "Copilot keeps working after your credits run out, and each extra request is "
                "charged at $0.01.",
            ),
            (
                "Can I enable the Copilot AI add-on for only some of our users and pay just for "
                "them?",
                (_SEATS, _PLANS),
                "Yes. Under Settings > Copilot you can assign the add-on to individual members; "
                "only assigned members are billed.",
            ),
            (
                "Is the Copilot AI add-on included in the Business plan or is it extra?",
                (_PLANS, _USAGE),
                "Copilot is included in the Business plan at no extra cost; on Starter and Team "
                "it costs $9 per user per month.",
            ),
            (
                "Do unused Copilot AI credits roll over to next month?",
                (_CREDITS, _USAGE),
                "Unused AI credits roll over for up to 3 months and then expire.",
            ),
            (
                "How do I turn off the Copilot AI add-on so we stop paying for it?",
                (_SEATS, _PLANS),
                "Go to Settings > Copilot and click Disable add-on; billing for Copilot stops "
                "at the end of the current month.",
            ),
        )
    )
)
"""billing-assistant's production questions about the Copilot AI add-on: not in its golden set
and not in its help centre. Retrieval returns the nearest billing passages; the answers
(made up by the production model) state prices, credits and settings those passages lack."""

ADD_ON_SHARE = (0.55, 0.8, 0.27)
"""The add-on's questions: absent before position 0.55 of the window, then a growing share of
billing tickets, ``0.27`` from position 0.8 on."""


def _add_on_share(t: float) -> float:
    start, full, share = ADD_ON_SHARE
    return 0.0 if t < start else share * min(1.0, (t - start) / (full - start))


def _ask_about_the_add_on(items: Sequence[Item], day: date, t: float, seed: int) -> None:
    """Turn a share of billing-assistant's tickets into questions about the add-on.

    The draws come from their own stream, so the day's other draws (and the story's numbers)
    are those of a history without the add-on.
    """
    share = _add_on_share(t)
    if share <= 0.0:
        return
    rng = random.Random(f"billing-assistant/{seed}/{day.isoformat()}/{ADD_ON_TOPIC}")
    for item, u in zip(items, stratified(rng, len(items)), strict=True):
        if u < share:
            item.case = rng.choice(ADD_ON_CASES)
            item.question = item.case.input


def _volume(day: date, rng: random.Random) -> int:
    base = 46 if day.weekday() >= 5 else 66
    return max(40, min(80, round(base * (1 + rng.gauss(0.0, 0.08)))))


def day_items(story: Story, day: date, t: float, seed: int, export_at: datetime) -> list[Item]:
    """The items opened on ``day`` (``t``: its position in the window), as of ``export_at``."""
    rng = random.Random(f"{story.agent}/{seed}/{day.isoformat()}")
    cases = load_cases(story.agent)
    n = _volume(day, rng)
    midnight = datetime.combine(day, time(), tzinfo=UTC)
    seconds = sorted(
        rng.choices(range(24), weights=_HOUR_WEIGHTS)[0] * 3600 + rng.randrange(3600)
        for _ in range(n)
    )
    items = [
        Item(
            id=f"{story.prefix}-{day:%y%m%d}-{k:03d}",
            opened=midnight + timedelta(seconds=s),
            case=rng.choice(cases),
            seed=f"{story.agent}/{seed}/{day:%Y%m%d}/{k}",
        )
        for k, s in enumerate(seconds, start=1)
    ]
    adoption, escalation = story.adoption_at(t), story.escalation_at(t)
    for item, u in zip(items, stratified(rng, n), strict=True):
        item.handled = u < adoption
    handled = [i for i in items if i.handled]
    for item, u in zip(handled, stratified(rng, len(handled)), strict=True):
        item.escalated = u < escalation
    for item, u in zip(items, stratified(rng, n), strict=True):
        item.reopened = u < story.rework[1 if item.handled else 0]
    for item in items:
        item.question = item.case.input
        if story.agent == "account-support" and rng.random() < 0.25:
            item.contact = _contact(rng)
            item.question = _with_contact(item.case.input, item.contact, rng)
        if item.handled and not item.escalated:
            hours = rng.uniform(*story.agent_hours)
            resolver = "agent"
        elif item.handled:
            hours = max(1.0, _lognormal(rng, story.escalated_hours, 0.5))
            resolver = rng.choice(story.people)
        else:
            hours = max(1.5, _lognormal(rng, story.human_hours, 0.45))
            resolver = rng.choice(story.people)
        if item.reopened:
            hours += rng.uniform(4.0, 30.0)  # reopened, then closed again
        closed = item.opened + timedelta(seconds=round(hours * 3600))
        if closed <= export_at:
            item.closed, item.resolver = closed, resolver
        else:
            item.reopened = False  # still open: not closed yet, so not reopened either
    _OUTCOMES[story.agent](items, rng)
    if story.agent == "billing-assistant":
        _ask_about_the_add_on(items, day, t, seed)
    return items


def work_item_row(item: Item, story: Story) -> list[str]:
    """The item as a row of the work-item export (:data:`COLUMNS` then the outcomes)."""
    return [
        item.id,
        story.agent,
        _iso(item.opened),
        _iso(item.closed) if item.closed else "",
        item.resolver or "",
        "true" if item.escalated else "false",
        "1" if item.reopened else "0",
        item.case.category,
        *(item.outcomes.get(c, "") for c in story.outcome_columns),
    ]


COLUMNS = (
    "id", "agent", "opened_at", "closed_at", "resolved_by", "escalated", "reopened", "category",
)  # fmt: skip
"""The export's columns before the agent's outcome columns (common names: no mapping)."""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def attributes_json(value: Any) -> str:
    """Compact JSON, as instrumentations put structured values in string attributes."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
