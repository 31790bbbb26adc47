"""How well the golden set covers production: similar questions, uncovered clusters, suggestions.

Production inputs (each trace's question, masked as stored) and the golden cases' inputs are
embedded with the bundled sentence-embedding model (``evals.judges.default_embedder``). A
production input is *covered* when some golden input is at least ``threshold`` similar
(cosine); ``golden_coverage`` is the share of the window's traffic that is covered, with a
Wilson interval. The uncovered inputs are grouped into clusters (greedy leader clustering: an
input joins the first cluster whose centroid is at least ``cluster_threshold`` similar), largest
first, each with its size, a few examples and their trace ids. :func:`suggest_cases` turns the
largest clusters into candidate golden cases — never into a dataset: a person reviews them,
writes references, and adds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from evals.dataset import Case
from evals.metrics import METRICS, MetricValue, aggregate
from evals.online._traces import QUERY_MEMORY
from evals.store import ResultsStore


class Embedder(Protocol):
    """What coverage needs of an embedder: unit vectors for texts (``evals.judges.Embedder``)."""

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """One unit vector per text, as rows."""
        ...


__all__ = [
    "Coverage",
    "Embedder",
    "UncoveredCluster",
    "golden_coverage",
    "production_inputs",
    "suggest_cases",
]


def production_inputs(
    store: ResultsStore, agent: str, since: datetime, until: datetime
) -> list[tuple[str, str]]:
    """``(trace_id, input)`` of every trace of ``agent`` whose root span started in the window.

    The input is the root span's input text, else the first model call's; traces with neither
    are left out. One query; memory holds only the ids and the texts.
    """
    sql = """
    WITH w AS (
        SELECT trace_id, span_id, parent_span_id, agent, start, operation, input_text
        FROM spans
        WHERE date BETWEEN strftime($since, '%Y-%m-%d')
                       AND strftime($until + INTERVAL 1 HOUR, '%Y-%m-%d')
          AND start >= $since AND start < $until + INTERVAL 1 HOUR
    ),
    root_rows AS (
        SELECT trace_id, coalesce(
            arg_min({'agent': agent, 'start': start, 'input_text': input_text},
                    (start, span_id)) FILTER (WHERE parent_span_id IS NULL),
            arg_min({'agent': agent, 'start': start, 'input_text': input_text}, (start, span_id))
        ) AS r
        FROM w GROUP BY trace_id
    ),
    mine AS (
        SELECT trace_id, r.agent, r.start, r.input_text FROM root_rows
        WHERE r.agent = $agent AND r.start >= $since AND r.start < $until
    ),
    asked AS (
        SELECT w.trace_id, arg_min(w.input_text, w.start) AS first_input
        FROM w JOIN mine USING (trace_id)
        WHERE w.operation IN ('chat', 'text_completion', 'generate_content')
          AND w.input_text IS NOT NULL
        GROUP BY w.trace_id
    )
    SELECT m.trace_id, coalesce(m.input_text, a.first_input) AS question
    FROM mine m LEFT JOIN asked a USING (trace_id)
    WHERE coalesce(m.input_text, a.first_input) IS NOT NULL
    ORDER BY m.start, m.trace_id
    """
    with store.connect() as db:
        db.execute(f"SET memory_limit = '{QUERY_MEMORY}'")
        rows = db.execute(sql, {"since": since, "until": until, "agent": agent}).fetchall()
    return [(trace_id, text) for trace_id, text in rows if text and text.strip()]


@dataclass(frozen=True)
class UncoveredCluster:
    """Production questions like one another and unlike every golden case."""

    size: int
    """Traces in the cluster."""
    share: float
    """Its share of the window's traffic."""
    examples: list[str]
    """A few of its questions (masked as stored), the most central first."""
    trace_ids: list[str]
    """The traces of the examples, in the same order."""
    nearest_golden: float
    """Similarity of its centre to the closest golden input."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON, the report)."""
        return {
            "size": self.size,
            "share": self.share,
            "examples": self.examples,
            "trace_ids": self.trace_ids,
            "nearest_golden": self.nearest_golden,
        }


@dataclass(frozen=True)
class Coverage:
    """``golden_coverage`` and what it leaves out."""

    metric: MetricValue
    """The share of production inputs with a golden input within the threshold."""
    threshold: float
    n_golden: int
    clusters: list[UncoveredCluster] = field(default_factory=list)
    """Uncovered clusters, largest first."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON, the report)."""
        m = self.metric
        return {
            "golden_coverage": m.value,
            "low": m.low,
            "high": m.high,
            "n": m.n,
            "threshold": self.threshold,
            "golden_cases": self.n_golden,
            "uncovered_clusters": [c.to_dict() for c in self.clusters],
        }


def _leader_clusters(vectors: np.ndarray, threshold: float) -> list[list[int]]:
    """Greedy leader clustering of unit vectors, deterministic in input order.

    Each vector joins the most similar centroid at or above ``threshold``, else starts a new
    cluster.
    """
    centroids = np.zeros((0, vectors.shape[1]), dtype=np.float32)
    sums: list[np.ndarray] = []
    members: list[list[int]] = []
    for i, vector in enumerate(vectors):
        if len(members):
            similarity = centroids @ vector
            best = int(np.argmax(similarity))
            if similarity[best] >= threshold:
                members[best].append(i)
                sums[best] = sums[best] + vector
                norm = float(np.linalg.norm(sums[best])) or 1.0
                centroids[best] = sums[best] / norm
                continue
        members.append([i])
        sums.append(vector.astype(np.float32).copy())
        centroids = np.vstack([centroids, vector[None, :]])
    return members


def golden_coverage(
    production: Sequence[tuple[str, str]],
    golden: Sequence[Case],
    *,
    threshold: float,
    confidence: float = 0.95,
    cluster_threshold: float = 0.6,
    examples: int = 3,
    max_clusters: int = 20,
    embedder: Embedder | None = None,
) -> Coverage:
    """The share of production inputs a golden case covers, and the uncovered clusters.

    Args:
        production: ``(trace_id, input)`` pairs (from :func:`production_inputs`).
        golden: the golden cases.
        threshold: cosine similarity at which a golden input covers a production input.
        confidence: of the interval.
        cluster_threshold: similarity to a cluster's centre at which an input joins it.
        examples: questions kept per cluster.
        max_clusters: clusters returned (the largest).
        embedder: the sentence embedder (default: the bundled model).
    """
    if embedder is None:
        from evals.judges import default_embedder

        embedder = default_embedder()
    spec = METRICS["golden_coverage"]
    texts = [text for _, text in production]
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return Coverage(aggregate(spec, [], confidence), threshold, len(golden))
    index = {text: i for i, text in enumerate(distinct)}
    # Large batches: short questions pad little, and a batch costs one pass of the model.
    vectors = embedder.encode(distinct, batch_size=256)
    gold = embedder.encode([c.input for c in golden], batch_size=256) if golden else None
    if gold is None:
        nearest = np.zeros(len(distinct), dtype=np.float32)
    else:
        nearest = np.empty(len(distinct), dtype=np.float32)
        for start in range(0, len(distinct), 8192):
            block = vectors[start : start + 8192] @ gold.T
            nearest[start : start + 8192] = block.max(axis=1)
    covered = nearest >= threshold
    metric = aggregate(spec, [1.0 if covered[index[t]] else 0.0 for t in texts], confidence)
    uncovered = [i for i in range(len(distinct)) if not covered[i]]
    counts = np.bincount([index[t] for t in texts], minlength=len(distinct))
    # Frequent questions lead their clusters: order by traffic, then text.
    uncovered.sort(key=lambda i: (-counts[i], distinct[i]))
    groups = _leader_clusters(vectors[uncovered], cluster_threshold) if uncovered else []
    ids_of: dict[str, list[str]] = {}
    for trace_id, text in production:
        ids_of.setdefault(text, []).append(trace_id)
    clusters = []
    total = len(texts)
    for group in groups:
        members = [uncovered[k] for k in group]
        size = int(sum(counts[i] for i in members))
        centre = vectors[members].mean(axis=0)
        centre /= float(np.linalg.norm(centre)) or 1.0
        central = sorted(members, key=lambda i: (-float(vectors[i] @ centre), distinct[i]))
        chosen = central[:examples]
        clusters.append(
            UncoveredCluster(
                size=size,
                share=size / total,
                examples=[distinct[i] for i in chosen],
                trace_ids=[ids_of[distinct[i]][0] for i in chosen],
                nearest_golden=float((gold @ centre).max()) if gold is not None else 0.0,
            )
        )
    clusters.sort(key=lambda c: (-c.size, c.examples[0]))
    return Coverage(metric, threshold, len(golden), clusters[:max_clusters])


def suggest_cases(
    coverage: Coverage, per_cluster: int = 1, clusters: int = 10
) -> list[dict[str, Any]]:
    """Candidate golden cases from the largest uncovered clusters (for a person to review).

    Each is a dataset row without a reference: ``id`` (``suggested-<trace id>``), ``input``
    (masked as stored), ``tags`` (``suggested``, the cluster), and ``metadata`` with the trace
    ids it came from, the cluster's size and share, and how close the golden set comes.
    """
    rows = []
    for number, cluster in enumerate(coverage.clusters[:clusters], start=1):
        for text, trace_id in list(zip(cluster.examples, cluster.trace_ids, strict=True))[
            :per_cluster
        ]:
            rows.append(
                {
                    "id": f"suggested-{trace_id[:16]}",
                    "input": text,
                    "tags": ["suggested", f"cluster-{number}"],
                    "metadata": {
                        "source": "production",
                        "trace_ids": cluster.trace_ids,
                        "cluster": number,
                        "cluster_size": cluster.size,
                        "cluster_share": round(cluster.share, 4),
                        "nearest_golden_similarity": round(cluster.nearest_golden, 4),
                        "review": "written by impactgate golden suggest: check the question, "
                        "add contexts and a reference before adding it to a dataset",
                    },
                }
            )
    return rows
