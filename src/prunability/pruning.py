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

import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

# The criteria and the robust rule need no torch (the table re-analyses stored curves
# with them); the search uses them from here.
from .criteria import Criterion, accuracy_criterion, loss_criterion, robust_answer  # noqa: F401

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


def layerwise_magnitude_ranks(weights: dict[str, torch.Tensor]) -> Ranks:
    """Layerwise magnitude ranking: every layer keeps the same fraction of its weights.

    An entry of within-layer magnitude rank r (0 = largest) in a layer of n entries is
    ordered globally by (r + 1) / n, so the global top k(alpha) keeps the largest
    ~alpha * n weights of every layer (to within one weight plus (layers + 1) / |P|).
    """
    scores = []
    for w in weights.values():
        order = torch.argsort(w.detach().abs().flatten(), descending=True, stable=True)
        within = torch.empty_like(order)
        within[order] = torch.arange(order.numel(), device=order.device)
        scores.append((within + 1).double() / order.numel())
    order = torch.argsort(torch.cat(scores), stable=True)
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

def sweep_alphas(resolution: float, alpha_min: float) -> list[float]:
    """The kept fractions 1, 1 - h, 1 - 2h, ... down to alpha_min (h = ``resolution``)."""
    steps = math.floor((1.0 - alpha_min) / resolution + 1e-9)
    return [round(1.0 - i * resolution, 12) for i in range(steps + 1)]


@dataclass
class SearchResult:
    alphas: dict[str, float]  # per criterion: the smallest kept fraction that passes (NaN: even alpha = 1 fails)
    at_lower_limit: dict[str, bool]  # per criterion: the sweep reached alpha_min without a failure, so alpha is an upper bound
    total: int
    curve: list[dict] = field(default_factory=list)  # every evaluation: alpha, kept, loss, acc

    def kept(self, criterion: str) -> float:
        """k(alpha), the absolute kept count kappa (NaN when alpha is)."""
        alpha = self.alphas[criterion]
        return float(kept_count(alpha, self.total)) if math.isfinite(alpha) else float("nan")


def search_prunability(
    evaluate: Callable[[float], tuple[float, float]],
    criteria: dict[str, Criterion],
    total: int,
    resolution: float,
    alpha_min: float,
) -> SearchResult:
    """Smallest kept fraction whose pruned model passes each criterion (the robust rule,
    our default: Kuhn et al. 2021 do not state their search),
    exact on the sweep 1, 1 - h, 1 - 2h, ... (h = ``resolution``).

    ``evaluate(alpha)`` returns (loss, accuracy) of the model pruned to alpha. Every
    point of the sweep is evaluated from alpha = 1 downwards until each criterion has
    failed once: its first failure from the top settles its robust answer (the point
    just above), and no failing sweep point lies above that answer. A bisection
    between coarse grid points would not know that: near the tolerance the loss is
    not monotone in alpha, and it can land in a passing pocket below failing
    fractions it never evaluated. The sweep is never finer than one weight (points
    with the same kept count share one evaluation) and stops at ``alpha_min`` (a
    criterion that never failed reports an upper bound).
    """
    curve: list[dict] = []
    answers = {name: float("nan") for name in criteria}
    failed: set[str] = set()
    # Consecutive sweep points with the same kept count prune the same weights: one
    # evaluation serves them all, recorded at the smallest of them, which is what the
    # robust rule on the whole sweep would report.
    for kept, same_mask in itertools.groupby(sweep_alphas(resolution, alpha_min), key=lambda a: kept_count(a, total)):
        same_mask = list(same_mask)
        loss, acc = evaluate(same_mask[0])
        alpha = same_mask[-1]
        curve.append(dict(alpha=alpha, kept=kept, loss=loss, acc=acc))
        for name, passes in criteria.items():
            if name in failed:
                continue
            if passes(loss, acc):
                answers[name] = alpha
            else:
                failed.add(name)
        if len(failed) == len(criteria):
            break
    return SearchResult(
        alphas=answers,
        at_lower_limit={name: name not in failed for name in criteria},
        total=total,
        curve=curve,
    )
