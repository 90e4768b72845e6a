#!/usr/bin/env python
"""Bootstrap intervals: the vectorised replicates against one scikit-learn call per replicate.

``fakescope eval`` computes 95 % intervals for eight metrics per group and per robustness point;
this prints the seconds both ways for one group of ``--n`` images and ``--resamples``
replicates, and checks that both give the same AP interval.

    python benchmarks/bench_bootstrap.py --n 2000 --resamples 1000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from fakescope.evaluation.bootstrap import cluster_weights, weighted_metrics_batch


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, args.n)
    scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1)
    photos = [f"p{i // 8}" for i in range(args.n)]
    weights = cluster_weights(labels, photos, args.resamples, seed=0)

    started = time.perf_counter()
    fast = weighted_metrics_batch(labels, scores, weights, threshold=0.5)
    vectorised = time.perf_counter() - started

    started = time.perf_counter()
    slow_ap = []
    for row in weights:
        slow_ap.append(average_precision_score(labels, scores, sample_weight=row))
        roc_auc_score(labels, scores, sample_weight=row)
    loop = time.perf_counter() - started

    same = np.allclose(np.percentile(fast["ap"], [2.5, 97.5]), np.percentile(slow_ap, [2.5, 97.5]))
    print(f"n={args.n} resamples={args.resamples}")
    print(f"vectorised (8 metrics incl. ECE): {vectorised:.2f} s")
    print(f"scikit-learn loop (AP + ROC-AUC only): {loop:.2f} s ({loop / vectorised:.1f}x)")
    print(f"same AP interval: {same}")


if __name__ == "__main__":
    main()
