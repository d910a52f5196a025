"""Refits against known truth: `python -m bench.lineage [SEEDS]` (default 12).

Month 1 and month 2 of `segmentation.synthetic.make_refit` (2,000 customers, 4 personas: 10%
of the staying customers change persona, one persona vanishes, one appears, 5% leave, 5%
join), k chosen anew each month. Per seed: the segments found each month, `moved` against the
truth, and whether the vanished persona's segment is `disappeared` and the new one `emerged`.
"""

from __future__ import annotations

import sys

import numpy as np

from segmentation import analyze
from segmentation.synthetic import make_refit


def _segment_of(labels: np.ndarray, truth: np.ndarray, persona: int) -> int:
    ids, counts = np.unique(labels[truth == persona], return_counts=True)
    return int(ids[counts.argmax()])


def main(seeds: int) -> None:
    for seed in range(seeds):
        refit = make_refit(2000, 4, random_state=seed)
        first = analyze(refit.first.frame)
        second = analyze(refit.second.frame, previous=first)
        lineage = second.lineage
        assert lineage is not None
        events = {(e.previous_cluster_id, e.cluster_id): e.event for e in lineage.segments}
        vanished = _segment_of(first.labels, refit.first.labels, refit.vanished)
        emerged = _segment_of(second.labels, refit.second.labels, refit.emerged)
        moved = lineage.moved / lineage.customers_compared
        print(
            f"seed {seed:2}: k {len(first.segments)} -> {len(second.segments)}, moved "
            f"{moved:.3f} vs truth {refit.moved:.3f} ({100 * (moved - refit.moved):+.1f} "
            f"points), vanished {events.get((vanished, None), '-')}, new "
            f"{events.get((None, emerged), '-')}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
