"""The production target: each sampled trace's recorded output, like a replay of the traffic."""

from __future__ import annotations

from collections.abc import Sequence

from evals.dataset import Case
from evals.errors import UserError
from evals.store import Output
from evals.targets import AgentVersion, OnOutput, Progress, Target, config_hash

__all__ = ["TraceTarget"]


class TraceTarget(Target):
    """Serves the outputs production traces recorded; the version is the one deployed."""

    kind = "production"

    def __init__(self, agent: str, label: str, outputs: Sequence[Output]) -> None:
        self._agent, self._label = agent, label
        self._outputs = {o.case_id: o for o in outputs}

    def version(self) -> AgentVersion:
        """The deployed version, hashed over the traces served."""
        return AgentVersion(
            self._agent,
            self._label,
            config_hash(
                {"kind": self.kind, "version": self._label, "traces": sorted(self._outputs)}
            ),
        )

    def available_versions(self) -> list[str]:
        """Only the version that served the traffic."""
        return [self._label]

    def at_version(self, label: str) -> TraceTarget:
        """Production traces are answers of the version deployed; no other can be produced."""
        if label != self._label:
            raise UserError.single(
                "--version",
                "version",
                f"production traces were answered by the deployed version '{self._label}'; "
                f"they cannot be replayed as '{label}'",
            )
        return self

    def generate(
        self,
        cases: Sequence[Case],
        progress: Progress | None = None,
        on_output: OnOutput | None = None,
    ) -> list[Output]:
        """Each case's recorded output (a trace the sample did not build is an error)."""
        outputs = []
        for done, case in enumerate(cases, start=1):
            output = self._outputs.get(case.id) or Output(
                case.id, None, error="no recorded output for this trace"
            )
            outputs.append(output)
            if on_output is not None:
                on_output(output)
            if progress is not None:
                progress(done)
        return outputs
