"""Replay: outputs recorded earlier, per agent version."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from evals.contract import Contract, ReplayTargetSpec
from evals.dataset import Case, Dataset, RecordedOutput, Recordings, load_recordings
from evals.errors import UserError, did_you_mean, display_path
from evals.targets._base import AgentVersion, OnOutput, Output, Progress, Target, config_hash

__all__ = ["ReplayTarget"]

_MODULUS = 1 << 256


class ReplayTarget(Target):
    """Serve recorded outputs of one version, from a side file or the dataset's ``output``."""

    kind = "replay"

    def __init__(
        self,
        contract: Contract,
        spec: ReplayTargetSpec,
        dataset: Dataset,
        recordings: Recordings | None = None,
        label: str | None = None,
    ) -> None:
        self._contract, self._spec, self._dataset = contract, spec, dataset
        if recordings is None and spec.outputs is not None:
            recordings = load_recordings(contract.resolve(spec.outputs), dataset)
        self._recordings = recordings
        self._label = label or spec.version
        self._version: AgentVersion | None = None
        if self._label not in self.available_versions():
            where = display_path(recordings.path) if recordings else "the dataset's 'output' column"
            raise UserError.single(
                display_path(contract.source),
                "evals.target.version",
                f"no outputs recorded for version '{self._label}' in {where}"
                + did_you_mean(self._label, self.available_versions()),
            )

    def available_versions(self) -> list[str]:
        """Recorded versions (the dataset's own outputs count as ``spec.version``)."""
        if self._recordings is not None:
            return self._recordings.versions
        return [self._spec.version]

    def at_version(self, label: str) -> ReplayTarget:
        """The recorded outputs of another version."""
        return ReplayTarget(self._contract, self._spec, self._dataset, self._recordings, label)

    def _recorded(self, case: Case) -> RecordedOutput | None:
        """The recording of ``case`` at this version (``None``: there is none)."""
        if self._recordings is not None:
            return self._recordings.by_version[self._label].get(case.id)
        return RecordedOutput(
            case_id=case.id,
            version=self._label,
            output=case.output,
            usage=case.usage,
            latency_s=case.latency_s,
            cost_usd=case.cost_usd,
            model=case.model,
            error=None if case.output is not None else "the case has no recorded 'output'",
        )

    def version(self) -> AgentVersion:
        """The recorded version, hashed over its recordings (computed once)."""
        if self._version is None:
            self._version = AgentVersion(self._contract.agent, self._label, self._hash())
        return self._version

    def _hash(self) -> str:
        if self._recordings is not None:
            recorded = self._recordings.by_version[self._label]
            content = [recorded[k].model_dump(mode="json") for k in sorted(recorded)]
            return config_hash({"kind": self.kind, "version": self._label, "outputs": content})
        # The dataset's own outputs: a hash of the set of recordings, whatever their order,
        # summed record by record so that a dataset read in batches is never held whole.
        total = 0
        for batch in self._dataset.batches():
            for case in batch:
                record = self._recorded(case)
                assert record is not None
                digest = hashlib.sha256(record.model_dump_json().encode()).digest()
                total = (total + int.from_bytes(digest, "big")) % _MODULUS
        return config_hash({"kind": self.kind, "version": self._label, "outputs": f"{total:064x}"})

    def generate(
        self,
        cases: Sequence[Case],
        progress: Progress | None = None,
        on_output: OnOutput | None = None,
    ) -> list[Output]:
        """Look up each case's recording; a case without one is a recorded error."""
        outputs = []
        for done, case in enumerate(cases, start=1):
            record = self._recorded(case)
            if record is None:
                outputs.append(
                    Output(case.id, None, error=f"no output recorded for version '{self._label}'")
                )
            else:
                outputs.append(
                    Output(
                        case_id=case.id,
                        text=record.output,
                        contexts=tuple(record.contexts) if record.contexts is not None else None,
                        latency_s=record.latency_s,
                        usage=record.usage,
                        cost_usd=record.cost_usd,
                        model=record.model,
                        error=record.error,
                    )
                )
            if on_output is not None:
                on_output(outputs[-1])
            if progress is not None:
                progress(done)
        return outputs
