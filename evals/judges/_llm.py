"""The LLM tier: a model through litellm judges each claim, with structured output.

Two judges share one client (retries, cache, no secrets in the cache):

- ``LLMGroundingJudge``: our claims (the same splitter as the offline tier) and the contexts in
  one request; the model answers JSON, one verdict per claim with the passage it relied on.
  A reply that is not valid JSON of that shape is re-asked, saying what was wrong.
- ``RagasFaithfulnessJudge``: ragas's ``Faithfulness`` metric (statements, then verdicts: two
  requests per answer) through ragas's litellm adapter, with our client underneath.

A rerun of the same answers is answered from the cache and costs nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from evals.judges._base import Claim, GroundingVerdict, split_claims
from evals.llm import LLMCallError, LLMClient

__all__ = ["LLMGroundingJudge", "RagasFaithfulnessJudge", "parse_verdicts", "prompt_fingerprint"]

_SYSTEM = (
    "You check whether claims are supported by context passages. Judge only from the passages, "
    "never from what you know. Reply with JSON only."
)
_INSTRUCTIONS = """For each claim decide:
- "supported": the passages state it or directly imply it;
- "contradicted": the passages state something incompatible with it;
- "unsupported": the passages do not say.
Reply with exactly this JSON shape, one entry per claim, in order:
{"verdicts": [{"claim": 1, "verdict": "supported", "passage": 2, "reason": "one short sentence"}]}
"passage" is the number of the passage you relied on, or null."""


def prompt_fingerprint(params: dict[str, Any]) -> str:
    """A short hash of the prompt and call parameters: a change to either changes verdicts."""
    text = json.dumps([_SYSTEM, _INSTRUCTIONS, params], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class _ClaimReply(BaseModel):
    claim: int
    verdict: Literal["supported", "unsupported", "contradicted"]
    passage: int | None = None
    reason: str = ""


class _Reply(BaseModel):
    verdicts: list[_ClaimReply]


def _prompt(claims: Sequence[str], contexts: Sequence[str]) -> str:
    passages = "\n".join(f"[{i}] {c}" for i, c in enumerate(contexts, start=1))
    numbered = "\n".join(f"{i}. {c}" for i, c in enumerate(claims, start=1))
    return f"Passages:\n{passages}\n\nClaims:\n{numbered}\n\n{_INSTRUCTIONS}"


def parse_verdicts(text: str, n_claims: int) -> list[_ClaimReply]:
    """Parse a reply into one verdict per claim.

    Raises:
        ValueError: the reply is not JSON of the expected shape, or misses or repeats claims.
    """
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match is None:
        raise ValueError("the reply holds no JSON object")
    try:
        reply = _Reply.model_validate(json.loads(match.group(0)))
    except json.JSONDecodeError as exc:
        raise ValueError(f"the reply is not valid JSON ({exc.msg})") from None
    except ValidationError as exc:
        raise ValueError(f"the JSON does not match the shape: {exc.errors()[0]['msg']}") from None
    numbers = sorted(v.claim for v in reply.verdicts)
    if numbers != list(range(1, n_claims + 1)):
        raise ValueError(f"expected one verdict for each of claims 1..{n_claims}, got {numbers}")
    return sorted(reply.verdicts, key=lambda v: v.claim)


async def _gather(
    items: Sequence[tuple[str, Sequence[str]]],
    one: Callable[[str, Sequence[str]], Awaitable[GroundingVerdict]],
    concurrency: int,
) -> list[GroundingVerdict]:
    gate = asyncio.Semaphore(concurrency)

    async def bounded(answer: str, contexts: Sequence[str]) -> GroundingVerdict:
        async with gate:
            return await one(answer, contexts)

    return list(await asyncio.gather(*(bounded(a, c) for a, c in items)))


class LLMGroundingJudge:
    """One request per answer: claims and passages in, one JSON verdict per claim out."""

    name = "llm"

    def __init__(
        self, client: LLMClient, parse_retries: int = 2, concurrency: int = 8, repeats: int = 1
    ) -> None:
        self.client = client
        self.parse_retries = parse_retries
        self.concurrency = concurrency
        self.repeats = repeats

    def judge(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        """Judge every answer, ``concurrency`` requests at a time."""
        return asyncio.run(_gather(items, self._one, self.concurrency))

    async def _one(self, answer: str, contexts: Sequence[str]) -> GroundingVerdict:
        claims, skipped = split_claims(answer)
        if not contexts:
            return GroundingVerdict([], skipped, "the case has no contexts to ground in", self.name)
        if not claims:
            return GroundingVerdict([], skipped, judge=self.name)
        runs = [await self._judged(claims, skipped, contexts, i) for i in range(self.repeats)]
        failed = next((r for r in runs if r.error), None)
        if failed is not None or self.repeats == 1:
            return failed or runs[0]
        # Majority over repeats; each claim's probability is its share of "supported" votes.
        merged = []
        for k, claim in enumerate(runs[0].claims):
            votes = [r.claims[k].supported for r in runs]
            share = sum(votes) / len(votes)
            merged.append(
                Claim(
                    text=claim.text,
                    supported=share >= 0.5,
                    probability=round(share, 4),
                    evidence=claim.evidence,
                    verdict=claim.verdict
                    if claim.supported == (share >= 0.5)
                    else ("supported" if share >= 0.5 else "unsupported"),
                    reasons=[
                        *claim.reasons,
                        f"{sum(votes)} of {len(votes)} repeats found it supported",
                    ],
                    features={"votes_supported": float(sum(votes)), "repeats": float(len(votes))},
                )
            )
        return GroundingVerdict(
            merged,
            skipped,
            judge=self.name,
            repeat_shares=[r.support_share for r in runs],
            repeat_flags=[bool(r.unsupported) for r in runs],
        )

    async def _judged(
        self, claims: list[str], skipped: list[str], contexts: Sequence[str], repeat: int
    ) -> GroundingVerdict:
        tag = f"repeat-{repeat}" if repeat else None
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": _prompt(claims, contexts)},
        ]
        problem = ""
        for _ in range(self.parse_retries + 1):
            try:
                completion = await self.client.complete(messages, cache_tag=tag, temperature=0)
            except LLMCallError as exc:
                return GroundingVerdict([], skipped, f"LLM judge call failed: {exc}", self.name)
            try:
                replies = parse_verdicts(completion.text, len(claims))
            except ValueError as exc:
                problem = str(exc)
                messages = [
                    *messages,
                    {"role": "assistant", "content": completion.text},
                    {
                        "role": "user",
                        "content": f"That reply was not usable: {problem}. Reply again with the JSON only.",
                    },
                ]
                continue
            return GroundingVerdict(
                [
                    self._claim(text, reply, contexts)
                    for text, reply in zip(claims, replies, strict=True)
                ],
                skipped,
                judge=self.name,
            )
        return GroundingVerdict(
            [],
            skipped,
            f"LLM judge reply unusable after {self.parse_retries + 1} tries: {problem}",
            self.name,
        )

    def _claim(self, text: str, reply: _ClaimReply, contexts: Sequence[str]) -> Claim:
        passage = reply.passage
        evidence = contexts[passage - 1] if passage and 1 <= passage <= len(contexts) else ""
        supported = reply.verdict == "supported"
        return Claim(
            text=text,
            supported=supported,
            probability=1.0 if supported else 0.0,
            evidence=evidence,
            verdict=reply.verdict,
            reasons=[f"{reply.verdict} ({self.client.model}): {reply.reason}".rstrip(": ")],
        )


class RagasFaithfulnessJudge:
    """ragas's ``Faithfulness`` (statements, then NLI verdicts) over our litellm client."""

    name = "ragas"

    def __init__(self, client: LLMClient, concurrency: int = 8) -> None:
        from ragas.llms import llm_factory
        from ragas.metrics.collections import Faithfulness

        self.client = client
        self.concurrency = concurrency
        self._metric: Any = Faithfulness(
            llm=llm_factory(client.model, provider="litellm", client=self._acompletion)
        )

    async def _acompletion(self, **request: Any) -> Any:
        """Litellm's ``acompletion`` signature, answered by our client (retries, cache)."""
        import litellm

        messages = request.pop("messages")
        request.pop("model", None)
        completion = await self.client.complete(messages, **request)
        return litellm.ModelResponse(**completion.raw)

    def judge(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[GroundingVerdict]:
        """Judge every answer, ``concurrency`` at a time."""
        return asyncio.run(_gather(items, self._one, self.concurrency))

    async def _one(self, answer: str, contexts: Sequence[str]) -> GroundingVerdict:
        _, skipped = split_claims(answer)
        if not contexts:
            return GroundingVerdict([], skipped, "the case has no contexts to ground in", self.name)
        try:
            # The two steps of Faithfulness.ascore, kept apart to keep each statement's reason.
            statements = await self._metric._create_statements("", answer)
            if not statements:
                return GroundingVerdict([], skipped, judge=self.name)
            verdicts = await self._metric._create_verdicts(statements, "\n".join(contexts))
        except LLMCallError as exc:
            return GroundingVerdict([], skipped, f"ragas judge call failed: {exc}", self.name)
        except Exception as exc:  # instructor gives up on unparseable replies with its own types
            return GroundingVerdict(
                [], skipped, f"ragas judge failed: {type(exc).__name__}: {exc}", self.name
            )
        claims = [
            Claim(
                text=v.statement,
                supported=bool(v.verdict),
                probability=1.0 if v.verdict else 0.0,
                evidence="",
                verdict="supported" if v.verdict else "unsupported",
                reasons=[f"ragas faithfulness ({self.client.model}): {v.reason}"],
            )
            for v in verdicts.statements
        ]
        return GroundingVerdict(claims, skipped, judge=self.name)
