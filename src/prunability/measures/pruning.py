"""Pruning-based measures: prunability (Kuhn et al. 2021), its random-mask variant
and the absolute kept count kappa.

Reproduction definition (papers.md §1.3; the paper's own choices are unknown, so
each is a setting): global unstructured magnitude pruning of every Conv/Linear
weight, no retraining, the mean training cross-entropy over the whole training set
in eval mode without augmentation, and the criterion

    L(M_alpha(theta)) <= (1 + rel_tol) * L(theta) + abs_tol.

The search evaluates a log-spaced grid of kept fractions (all stored), applies the
robust rule and bisects the final bracket (``prunability.pruning.search_prunability``).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..pruning import Pruner, SearchResult, log_grid, loss_criterion, magnitude_ranks, prunable_weights, random_ranks, search_prunability
from ..train import evaluate
from . import register, register_family


@register_family("pruning")
class PruningContext:
    def __init__(self, model, init_model, data, settings, log):
        self.model, self.data, self.settings, self.log = model, data, settings, log
        self.grid = log_grid(settings["alpha_min"], settings["grid_points"])

    def _loss_acc(self) -> tuple[float, float]:
        return evaluate(self.model, self.data, "train", self.settings["eval_batch_size"])

    @cached_property
    def base(self) -> tuple[float, float]:
        """Training loss and accuracy of the unpruned model."""
        return self._loss_acc()

    @cached_property
    def criterion(self):
        return loss_criterion(self.base[0], self.settings["rel_tol"], self.settings["abs_tol"])

    def _search(self, ranks, label: str) -> SearchResult:
        pruner = Pruner(self.model, ranks)

        def at(alpha: float) -> tuple[float, float]:
            pruner.prune_to(alpha)
            return self._loss_acc()

        try:
            result = search_prunability(at, self.criterion, self.grid, pruner.total, self.settings["refine_tol"])
        finally:
            pruner.restore()
        self.log(f"{label}: kept fraction {result.alpha:.4f} ({result.kept}/{result.total}), {len(result.curve)} evaluations")
        return result

    @cached_property
    def magnitude(self) -> SearchResult:
        return self._search(magnitude_ranks(prunable_weights(self.model)), "global magnitude")

    @cached_property
    def random(self) -> list[SearchResult]:
        weights = prunable_weights(self.model)
        return [self._search(random_ranks(weights, seed), f"random seed {seed}") for seed in range(self.settings["random_seeds"])]

    def details(self) -> dict:
        curves = {"magnitude": self.magnitude.curve}
        curves.update({f"random_seed_{i}": r.curve for i, r in enumerate(self.random)})
        return {
            "base_train_loss": self.base[0],
            "base_train_acc": self.base[1],
            "loss_bound": self.criterion.bound,
            "prunable_weights": self.magnitude.total,
            "at_lower_limit": self.magnitude.at_lower_limit,
            "random_alphas": [r.alpha for r in self.random],
            "random_alpha_std": float(np.std([r.alpha for r in self.random])),
            "curves": curves,
        }


@register("pruning", "prunability", orientation=+1)
def prunability(ctx: PruningContext) -> float:
    """Smallest kept fraction of Conv/Linear weights under global magnitude pruning with the training loss within tolerance."""
    return ctx.magnitude.alpha


@register("pruning", "prunability_random", orientation=+1)
def prunability_random(ctx: PruningContext) -> float:
    """The same search with uniformly random global masks, mean over ``random_seeds`` seeds."""
    return float(np.mean([r.alpha for r in ctx.random]))


@register("pruning", "kept_count", orientation=+1)
def kept_count(ctx: PruningContext) -> float:
    """kappa: the absolute number of weights kept at the prunability fraction."""
    return ctx.magnitude.kept
