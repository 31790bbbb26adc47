"""The billing-assistant example agent.

It makes no model call: it ranks the sentences of the retrieved passages by how many of the
question's informative words they share (weighted by rarity across the passages) and answers
with the best one or two. Cheap, fast and grounded by construction, which makes it the healthy
agent of the demo; a real team would put an LLM here (``kind: litellm`` targets).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from evals.dataset import Case
from evals.judges import content_words, split_sentences


def _rank(question: str, sentences: list[str]) -> list[tuple[float, int]]:
    bags = [set(content_words(s)) for s in sentences]
    document_frequency = Counter(word for bag in bags for word in bag)
    wanted = set(content_words(question))
    ranked = []
    for index, bag in enumerate(bags):
        overlap = wanted & bag
        weight = sum(math.log(1 + len(bags) / document_frequency[w]) for w in overlap)
        ranked.append((weight / math.sqrt(1 + len(bag)), index))
    return sorted(ranked, key=lambda item: (-item[0], item[1]))


def answer(case: Case, max_sentences: int = 2) -> dict[str, Any]:
    """Answer from the case's contexts with the best-matching sentences, in passage order."""
    sentences = [s for passage in case.contexts for s in split_sentences(passage)]
    if not sentences:
        return {"output": "I could not find this in the billing help centre.", "cost_usd": 0.0}
    ranked = _rank(case.input, sentences)
    best_score = ranked[0][0]
    chosen = [i for score, i in ranked[:max_sentences] if score >= 0.6 * best_score]
    text = " ".join(sentences[i] for i in sorted(chosen))
    return {"output": re.sub(r"\s+", " ", text).strip(), "cost_usd": 0.0}
