"""The prune potential of every model on each distribution (Liebenwein et al. 2021):
the tidy frame of the prune_potential family's JSON details and its summary per
distribution. Read from the JSON details (no torch): one record per model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .bootstrap import percentile_interval


def prune_potential_frame(records: list[dict]) -> pd.DataFrame:
    """One row per model and distribution: model (index), distribution ("train", "test" or
    "<corruption>/s<severity>"), corruption ("clean" for train and test), severity (0 for
    them) and prune_potential."""
    rows = []
    for i, record in enumerate(records):
        for key, value in record["details"].get("prune_potentials", {}).items():
            corruption, _, severity = key.partition("/s")
            rows.append(dict(model=i, distribution=key, corruption=corruption if severity else "clean",
                             severity=int(severity) if severity else 0, split=key if not severity else "test",
                             prune_potential=value))
    return pd.DataFrame(rows, columns=["model", "distribution", "corruption", "severity", "split", "prune_potential"])


def prune_potential_summary(frame: pd.DataFrame, resamples: int, level: float, seed: int) -> pd.DataFrame:
    """Per distribution: models, mean prune potential with a percentile-bootstrap interval of
    the mean (models resampled), standard deviation, min, median and max across models.
    The models are drawn by index from one generator the distributions share, not with
    bootstrap_counts: other draws would move every published interval."""
    rng = np.random.default_rng(seed)
    rows = []
    for key, group in frame.groupby("distribution", sort=False):
        values = group["prune_potential"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        low = high = float("nan")
        if len(values):
            means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
            low, high = percentile_interval(means, level)
        first = group.iloc[0]
        rows.append(dict(distribution=key, corruption=first["corruption"], severity=first["severity"], models=len(values),
                         mean=values.mean() if len(values) else float("nan"), mean_low=low, mean_high=high,
                         std=values.std(ddof=1) if len(values) > 1 else float("nan"),
                         min=values.min() if len(values) else float("nan"),
                         median=np.median(values) if len(values) else float("nan"),
                         max=values.max() if len(values) else float("nan")))
    return pd.DataFrame(rows)
