"""Building the judge a contract asks for."""

from __future__ import annotations

from evals._io import cache_dir
from evals.contract import GroundingConfig
from evals.judges._base import GroundingJudge
from evals.llm import CallCache, LLMClient

__all__ = ["build_judge", "judge_fingerprint"]


def judge_fingerprint(config: GroundingConfig) -> str:
    """What a judge's support scores depend on, without building it (no model is loaded).

    Offline: its fitted parameters, feature code and model; NLI: the model (and the folder's
    contents when local); LLM: the model, the prompt and the call parameters; ragas: the
    model and the ragas version. The support threshold is left out: it is what a calibration
    sets. A calibration fitted under one fingerprint does not hold under another.
    """
    if config.judge == "offline":
        from evals.judges._offline import offline_fingerprint

        return offline_fingerprint()
    assert config.model is not None
    if config.judge == "nli":
        from pathlib import Path

        from evals.judges._embedding import model_fingerprint

        local = Path(config.model)
        return f"nli:{config.model}" + (f":{model_fingerprint(local)}" if local.is_dir() else "")
    if config.judge == "llm":
        from evals.judges._llm import prompt_fingerprint

        return f"llm:{config.model}:{prompt_fingerprint(config.params)}:x{config.repeats}"
    from importlib.metadata import version

    return f"ragas:{config.model}:{version('ragas')}"


def build_judge(config: GroundingConfig) -> GroundingJudge:
    """The grounding judge of one configuration (offline, nli, llm or ragas)."""
    if config.judge == "offline":
        from evals.judges._offline import OfflineGroundingJudge

        return OfflineGroundingJudge(
            support_threshold=config.support_threshold, operating_point=config.operating_point
        )
    assert config.model is not None  # the contract model requires it for every other tier
    if config.judge == "nli":
        from evals.judges._nli import NLIGroundingJudge

        return NLIGroundingJudge(config.model, support_threshold=config.support_threshold or 0.5)
    client = LLMClient(
        config.model,
        api_base=config.api_base,
        api_key_env=config.api_key_env,
        params=config.params,
        cache=CallCache(cache_dir() / "llm-calls.sqlite") if config.cache else None,
    )
    from evals.judges._llm import LLMGroundingJudge, RagasFaithfulnessJudge

    if config.judge == "llm":
        return LLMGroundingJudge(client, concurrency=config.concurrency, repeats=config.repeats)
    return RagasFaithfulnessJudge(client, concurrency=config.concurrency)
