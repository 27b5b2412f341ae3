"""Masks for unstructured pruning, and the prunability search.

Masks are plain dictionaries ``{parameter name: 0/1 tensor}`` (as in open_lth),
never ``torch.nn.utils.prune`` hooks. The prunable set P is every weight entry of
every Conv and Linear layer (biases and BatchNorm parameters are never pruned).

A *ranking* gives every entry of P one global rank (0 = kept first). It is computed
once per model; the mask for a kept fraction alpha keeps the k(alpha) = ceil(alpha |P|)
entries of smallest rank, so every fraction is a threshold on the ranks, not a new
sort, and masks are nested by construction as alpha shrinks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

Masks = dict[str, torch.Tensor]
Ranks = dict[str, torch.Tensor]


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """The weights of every Conv/Linear layer, by parameter name, in module order."""
    return {
        f"{name}.weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))
    }


def kept_count(alpha: float, total: int) -> int:
    """k(alpha) = ceil(alpha * total), immune to float noise such as 0.3 * 10 = 3.0000000000000004."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"kept fraction must lie in [0, 1], got {alpha}")
    return min(total, math.ceil(round(alpha * total, 6)))


def _ranks_from_order(weights: dict[str, torch.Tensor], order: torch.Tensor) -> Ranks:
    """Split a global order (entry indices, most important first) into per-tensor ranks."""
    total = sum(w.numel() for w in weights.values())
    ranks_flat = torch.empty(total, dtype=torch.long, device=order.device)
    ranks_flat[order] = torch.arange(total, device=order.device)
    ranks, offset = {}, 0
    for name, w in weights.items():
        ranks[name] = ranks_flat[offset : offset + w.numel()].view_as(w)
        offset += w.numel()
    return ranks


def magnitude_ranks(weights: dict[str, torch.Tensor]) -> Ranks:
    """Global magnitude ranking: larger |w| first (ties: earlier entries first)."""
    flat = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    order = torch.argsort(flat, descending=True, stable=True)
    return _ranks_from_order(weights, order)


def random_ranks(weights: dict[str, torch.Tensor], seed: int) -> Ranks:
    """A uniformly random global ranking (layer-agnostic), seeded."""
    total = sum(w.numel() for w in weights.values())
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(total, generator=g).to(next(iter(weights.values())).device)
    return _ranks_from_order(weights, order)


def masks_from_ranks(ranks: Ranks, alpha: float) -> Masks:
    """Keep the ceil(alpha |P|) entries of smallest rank."""
    total = sum(r.numel() for r in ranks.values())
    k = kept_count(alpha, total)
    return {name: (r < k).to(torch.float32) for name, r in ranks.items()}


def sparsity_report(masks: Masks) -> dict:
    """Kept and total entries, per tensor and overall."""
    layers = {name: {"kept": int(m.sum().item()), "total": m.numel()} for name, m in masks.items()}
    kept = sum(v["kept"] for v in layers.values())
    total = sum(v["total"] for v in layers.values())
    return {"kept": kept, "total": total, "kept_fraction": kept / total if total else float("nan"), "layers": layers}


class Pruner:
    """Writes masked weights into a model in place for any kept fraction; ``restore`` undoes it."""

    def __init__(self, model: nn.Module, ranks: Ranks):
        self.weights = prunable_weights(model)
        if set(self.weights) != set(ranks):
            raise ValueError("ranking does not match the model's prunable weights")
        self.ranks = ranks
        self.original = {name: w.detach().clone() for name, w in self.weights.items()}
        self.total = sum(w.numel() for w in self.weights.values())

    @torch.no_grad()
    def prune_to(self, alpha: float) -> int:
        k = kept_count(alpha, self.total)
        for name, w in self.weights.items():
            w.copy_(self.original[name] * (self.ranks[name] < k))
        return k

    @torch.no_grad()
    def restore(self) -> None:
        for name, w in self.weights.items():
            w.copy_(self.original[name])


# --------------------------------------------------------------------------- the search


def log_grid(alpha_min: float, points: int) -> np.ndarray:
    """``points`` log-spaced kept fractions from alpha_min to 1 (both included)."""
    return np.geomspace(alpha_min, 1.0, points)


@dataclass
class SearchResult:
    alpha: float  # the prunability: smallest kept fraction that passes (robust rule + refinement)
    kept: float  # k(alpha), the absolute kept count kappa (NaN when alpha is)
    total: int
    at_lower_limit: bool  # the smallest grid fraction already passed: alpha is an upper bound
    curve: list[dict] = field(default_factory=list)  # every evaluation: alpha, kept, loss, acc, stage


def search_prunability(
    evaluate: Callable[[float], tuple[float, float]],
    passes: Callable[[float, float], bool],
    grid: Sequence[float],
    total: int,
    refine_tol: float,
) -> SearchResult:
    """Smallest kept fraction whose pruned model passes the criterion (papers.md §1.3).

    ``evaluate(alpha)`` returns (loss, accuracy) of the model pruned to alpha;
    ``passes(loss, acc)`` is the tolerance criterion. The whole grid is evaluated
    (the curve is stored so tolerances can be changed offline). Robust rule: the
    answer is the smallest grid fraction such that it *and every larger grid
    fraction* pass, so an isolated lucky point below a failure does not count.
    Then the bracket (last failing grid point, answer) is bisected down to
    ``refine_tol`` (never finer than one weight, 1/total).
    """
    grid = sorted(float(a) for a in grid)
    if grid[-1] != 1.0:
        grid.append(1.0)
    curve = []

    def run(alpha: float, stage: str) -> bool:
        loss, acc = evaluate(alpha)
        ok = bool(passes(loss, acc))
        curve.append(dict(alpha=alpha, kept=kept_count(alpha, total), loss=loss, acc=acc, passes=ok, stage=stage))
        return ok

    ok = [run(a, "grid") for a in grid]
    j = len(grid) - 1
    while j > 0 and ok[j - 1]:
        j -= 1
    if not ok[j]:  # even the unpruned model fails (e.g. a non-finite loss)
        return SearchResult(float("nan"), float("nan"), total, False, curve)
    if j == 0:
        return SearchResult(grid[0], kept_count(grid[0], total), total, True, curve)
    lo, hi = grid[j - 1], grid[j]
    tol = max(refine_tol, 1.0 / total)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if run(mid, "refine"):
            hi = mid
        else:
            lo = mid
    return SearchResult(hi, kept_count(hi, total), total, False, curve)


def loss_criterion(base_loss: float, rel_tol: float, abs_tol: float) -> Callable[[float, float], bool]:
    """Training loss within (1 + rel_tol) * L(theta) + abs_tol of the unpruned model's."""
    bound = (1.0 + rel_tol) * base_loss + abs_tol

    def passes(loss: float, acc: float) -> bool:
        return math.isfinite(loss) and loss <= bound

    passes.bound = bound  # type: ignore[attr-defined]
    return passes
