"""The pruning criteria and the robust rule, in plain Python. Kuhn et al. 2021 state
neither the tolerance nor how the smallest kept fraction is searched; both are our
defaults (see prunability.measures.pruning).

The prunability search (``prunability.pruning``, torch) and the offline re-analysis of
stored pruning curves at other tolerances (``prunability.table``, no torch: the analysis
jobs run without it) share these functions, so they agree by construction.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

Criterion = Callable[[float, float], bool]  # passes(loss, acc) for a pruned model


def robust_answer(curve: Sequence[dict], passes: Criterion) -> tuple[float, float | None]:
    """The robust rule on the evaluated points of a pruning curve (our rule; the paper
    does not state one).

    Returns (answer, below): ``answer`` is the smallest evaluated kept fraction such
    that it *and every larger evaluated fraction* pass, so an isolated lucky point
    below a failure does not count (NaN if the largest evaluated fraction fails);
    ``below`` is the largest evaluated fraction under it, which fails (None if every
    evaluated fraction passes: the answer is then only an upper bound).

    The search and the offline re-analysis of stored curves (other tolerances) both
    use this one function, so they agree by construction.
    """
    answer, below = float("nan"), None
    for point in sorted(curve, key=lambda c: c["alpha"], reverse=True):
        if not passes(point["loss"], point["acc"]):
            below = point["alpha"]
            break
        answer = point["alpha"]
    return answer, below


def loss_criterion(base_loss: float, rel_tol: float, abs_tol: float) -> Criterion:
    """Training loss within (1 + rel_tol) * L(theta) + abs_tol of the unpruned model's."""
    bound = (1.0 + rel_tol) * base_loss + abs_tol

    def passes(loss: float, acc: float) -> bool:
        return math.isfinite(loss) and loss <= bound

    passes.bound = bound  # type: ignore[attr-defined]
    return passes


def accuracy_criterion(base_acc: float, acc_tol: float) -> Criterion:
    """Training accuracy at most ``acc_tol`` below the unpruned model's."""
    bound = base_acc - acc_tol

    def passes(loss: float, acc: float) -> bool:
        return math.isfinite(acc) and acc >= bound

    passes.bound = bound  # type: ignore[attr-defined]
    return passes
