"""Would a coarse-then-fine prunability search give the same answers as the exact sweep?

The package sweeps every kept fraction 1, 1 - h, 1 - 2h, ... (h = resolution) until
each criterion fails, and answers with the robust rule (prunability.criteria). That costs
one evaluation per sweep point, most of the measure time. A cheaper search
evaluates a coarse grid (every ``--step``), applies the robust rule there, and then
sweeps only the last coarse bracket at h. This script replays that search on the
curves a study stored (``pruning_curves.csv``: the exact sweep, every point) and
counts how many answers differ and how many evaluations it would save. Nothing is
re-evaluated; a coarse point below the stored sweep is taken to fail, so the count
of differing answers is a lower bound.

    python benchmarks/coarse_search.py                              # results/digits-nin
    python benchmarks/coarse_search.py --study-dir results/cifar10-subset --steps 0.01 0.05

Criteria: the loss bound stored with each curve; on the global-magnitude curve also
the accuracy criterion (--acc-tol) and the tolerance sweep (--rel-tols), as the
measure does. Give the study's own settings if they differ from config.yaml's.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from prunability.criteria import accuracy_criterion, loss_criterion, robust_answer  # noqa: E402


def on_grid(alpha: float, step: float) -> bool:
    return abs(round(alpha / step) * step - alpha) < 1e-9


def coarse_then_fine(points: list[dict], passes, step: float) -> tuple[float, set[float]]:
    """The answer of the robust rule on the coarse grid refined in its last bracket, and
    the kept fractions that search evaluates for this criterion.

    The stored sweep ends at the exact answer's failure, so the coarse grid may need a
    point below the stored ones. It was never evaluated; it is taken to fail, the case
    in which the coarse search agrees with the exact one. Differences counted are
    therefore those the stored points prove (a lower bound on the real count)."""
    coarse = [p for p in points if on_grid(p["alpha"], step)]
    answer, below = robust_answer(coarse, passes)
    evaluated = {p["alpha"] for p in coarse if below is None or p["alpha"] >= below}
    if below is None:  # every stored coarse point passes: the next one, unstored, is taken to fail
        below = round(min(p["alpha"] for p in coarse) - step, 12)
        evaluated.add(below)
    top = answer if math.isfinite(answer) else below  # even alpha = 1 fails
    bracket = [p for p in points if below <= p["alpha"] <= top]
    evaluated |= {p["alpha"] for p in bracket}
    return robust_answer(bracket, passes)[0], evaluated


def compare(curves: pd.DataFrame, steps: list[float], acc_tol: float, rel_tols: list[float]) -> None:
    print(f"{'coarse step':>11}{'answers':>9}{'differ (at least)':>18}{'max |diff|':>12}{'evaluations':>13}{'of exact':>10}")
    for step in steps:
        answers = differ = exact_evals = coarse_evals = 0
        largest = 0.0
        for (_, curve), group in curves.groupby(["model", "curve"], sort=False):
            points = group.to_dict("records")
            base_loss, base_acc = points[0]["base_loss"], points[0]["base_acc"]
            criteria = {"loss": lambda loss, acc, bound=points[0]["bound"]: math.isfinite(loss) and loss <= bound}
            if curve == "magnitude":
                criteria["acc"] = accuracy_criterion(base_acc, acc_tol)
                criteria.update({f"rel_tol={e:g}": loss_criterion(base_loss, e, 0.0) for e in rel_tols})
            evaluated: set[float] = set()
            for passes in criteria.values():
                exact, below = robust_answer(points, passes)
                if below is None:  # the stored sweep never failed: no exact answer to compare with
                    continue
                answer, seen = coarse_then_fine(points, passes, step)
                evaluated |= seen
                answers += 1
                if not (answer == exact or (math.isnan(answer) and math.isnan(exact))):
                    differ += 1
                    largest = max(largest, abs(answer - exact) if math.isfinite(answer) else 1.0)
            exact_evals += len(points)
            coarse_evals += len(evaluated)
        print(f"{step:>11g}{answers:>9}{differ:>18}{largest:>12.3f}{coarse_evals:>13}{coarse_evals / exact_evals:>10.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study-dir", type=Path, default=REPO / "results" / "digits-nin")
    parser.add_argument("--steps", type=float, nargs="+", default=[0.005, 0.01, 0.02, 0.05])
    parser.add_argument("--acc-tol", type=float, default=0.01)
    parser.add_argument("--rel-tols", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.5, 1.0])
    args = parser.parse_args()
    curves = pd.read_csv(args.study_dir / "pruning_curves.csv")
    print(f"study {args.study_dir.name}: {curves['model'].nunique()} models, {curves.groupby(['model', 'curve']).ngroups} "
          f"curves, {len(curves)} evaluated points of the exact sweep")
    compare(curves, args.steps, args.acc_tol, args.rel_tols)


if __name__ == "__main__":
    main()
