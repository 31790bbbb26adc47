"""Cost per answer: the recorded cost, or token usage priced with litellm's bundled table."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from evals.contract import Price
from evals.dataset import Case
from evals.scorers._score import BatchScorer, Score, scorer
from evals.targets import Output

__all__ = ["cost", "litellm_price_table", "price_for"]

_TABLE = "model_prices_and_context_window_backup.json"


@lru_cache(maxsize=1)
def litellm_price_table() -> dict[str, Any]:
    """The model price table bundled with litellm, read without importing litellm.

    Importing litellm takes seconds and, unless told otherwise, fetches a newer table.
    """
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("litellm is not installed; its price table prices token usage")
    path = Path(next(iter(spec.submodule_search_locations))) / _TABLE
    table: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    table.pop("sample_spec", None)
    return table


def price_for(model: str, overrides: Mapping[str, Price]) -> tuple[float, float, str] | None:
    """USD per prompt token and per completion token for ``model``, and where it came from."""
    if model in overrides:
        price = overrides[model]
        return price.input_per_mtok / 1e6, price.output_per_mtok / 1e6, "contract prices"
    table = litellm_price_table()
    for key in (model, model.split("/", 1)[-1]):
        entry = table.get(key)
        if entry and "input_cost_per_token" in entry and "output_cost_per_token" in entry:
            return (
                float(entry["input_cost_per_token"]),
                float(entry["output_cost_per_token"]),
                "litellm price table",
            )
    return None


@scorer(
    name="cost",
    options=lambda c: {"model": c.evals.cost.model, "prices": c.evals.cost.prices},
)
def cost(*, model: str | None = None, prices: Mapping[str, Price] | None = None) -> BatchScorer:
    """USD for one answer. Unknown cost is an error, never a silent zero."""
    overrides = dict(prices or {})

    def score(cases: Sequence[Case], outputs: Sequence[Output]) -> list[Score]:
        scores = []
        for output in outputs:
            if output.cost_usd is not None:
                scores.append(
                    Score(
                        output.cost_usd,
                        None,
                        f"${output.cost_usd:.6f} as recorded by the target",
                        {"source": "recorded"},
                    )
                )
                continue
            if output.usage is None:
                scores.append(
                    Score.failed("cost unknown: the target recorded neither a cost nor token usage")
                )
                continue
            priced_model = output.model or model
            if priced_model is None:
                scores.append(
                    Score.failed("cost unknown: no model to price the tokens; set evals.cost.model")
                )
                continue
            price = price_for(priced_model, overrides)
            if price is None:
                scores.append(
                    Score.failed(
                        f"cost unknown: '{priced_model}' is not in litellm's price table; add "
                        f"evals.cost.prices.{priced_model} to the contract"
                    )
                )
                continue
            per_in, per_out, source = price
            usage = output.usage
            value = usage.prompt_tokens * per_in + usage.completion_tokens * per_out
            scores.append(
                Score(
                    value,
                    None,
                    f"${value:.6f}: {usage.prompt_tokens} prompt + {usage.completion_tokens} "
                    f"completion tokens of {priced_model} ({source})",
                    {
                        "source": source,
                        "model": priced_model,
                        "input_cost_per_token": per_in,
                        "output_cost_per_token": per_out,
                    },
                )
            )
        return scores

    return score
