"""What was wrong with the records of one file or request, kept short and counted in full."""

from __future__ import annotations

from evals.errors import Problem

__all__ = ["ProblemLog"]


class ProblemLog:
    """The problems found in one source, each naming the file, the line and the field.

    Only the first ``limit`` problems are kept (a file with a million bad lines must not
    hold a million messages in memory); ``count`` has them all.

    Args:
        source: how to name the file or request in each problem.
        limit: problems kept with their message.
    """

    def __init__(self, source: str, limit: int = 20) -> None:
        self.source = source
        self.limit = limit
        self.problems: list[Problem] = []
        self.count = 0

    def add(self, where: str, message: str) -> None:
        """Record one problem at ``where`` (``line 3: resourceSpans[0]…spans[2].traceId``)."""
        self.count += 1
        if len(self.problems) < self.limit:
            self.problems.append(Problem(self.source, where, message))

    def extend(self, problems: list[Problem], count: int) -> None:
        """Take another log's kept problems and its count (a chunk read elsewhere)."""
        for problem in problems:
            if len(self.problems) < self.limit:
                self.problems.append(problem)
        self.count += count

    def summary(self) -> str:
        """The kept problems, one a line, and how many more there were."""
        lines = [str(p) for p in self.problems]
        if self.count > len(self.problems):
            lines.append(f"{self.source}: … and {self.count - len(self.problems)} more")
        return "\n".join(lines)
