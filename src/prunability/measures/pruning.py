"""Pruning-based measures: prunability (Kuhn et al. 2021) and its variants, the
absolute kept count kappa, and one-shot pruning instability (Bartoldson et al. 2020).

Reproduction definition (Kuhn et al. 2021 do not state these choices; each is our
default and a setting): unstructured magnitude pruning of every Conv/Linear weight, no
retraining, the mean training cross-entropy over the whole training set in eval
mode without augmentation, and the criterion

    L(M_alpha(theta)) <= (1 + rel_tol) * L(theta) + abs_tol.

Variants: a uniformly random global mask (mean over seeds), layerwise magnitude
(every layer keeps the same fraction), the ranking taken on BN-folded weights, and
the accuracy criterion acc(M_alpha(theta)) >= acc(theta) - acc_tol.

Every search sweeps alpha = 1, 1 - h, 1 - 2h, ... (h = ``resolution``) downwards,
evaluating every point until each criterion has failed once, so every reported
fraction is exact on that sweep. The global-magnitude sweep runs on until the
loosest tolerance of ``rel_tol_sweep`` (and the accuracy criterion) has failed, so
the statistics can recompute prunability for those tolerances from the stored curve
(``prunability.pruning.robust_answer``) without re-evaluating any model.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from ..models import fold_batchnorm, has_batchnorm
from ..pruning import (
    Pruner,
    SearchResult,
    accuracy_criterion,
    layerwise_magnitude_ranks,
    loss_criterion,
    magnitude_ranks,
    prunable_weights,
    random_ranks,
    search_prunability,
)
from ..train import evaluate
from . import register, register_family

# What the workflow gives this family's jobs (prunability.families).
FAMILY = {"name": "pruning", "cost": "sweep", "cluster_group": None, "inputs": {}, "order": 0, "roles": ["prunability"]}


def sweep_name(rel_tol: float) -> str:
    """Criterion (and curve) key of one tolerance of the sweep."""
    return f"rel_tol={rel_tol:g}"


@register_family(FAMILY["name"])
class PruningContext:
    def __init__(self, model, init_model, data, settings, log, summary):
        self.model, self.data, self.settings, self.log = model, data, settings, log

    @cached_property
    def evaluated(self):
        """The model every loss is taken on: BatchNorm folded into the convs, the same
        function in eval mode with one operation fewer per layer (26-37% faster on a
        CPU). Zeroing a raw weight zeroes its folded weight, so the masks of the raw
        model's rankings act on it unchanged."""
        return fold_batchnorm(self.model) if has_batchnorm(self.model) else self.model

    def _loss_acc(self, split: str = "train") -> tuple[float, float]:
        return evaluate(self.evaluated, self.data, split, self.settings["eval_batch_size"])

    @cached_property
    def base(self) -> tuple[float, float]:
        """Training loss and accuracy of the unpruned model."""
        return self._loss_acc()

    @cached_property
    def base_test_acc(self) -> float:
        return self._loss_acc("test")[1]

    @cached_property
    def magnitude_ranks(self):
        return magnitude_ranks(prunable_weights(self.model))

    @cached_property
    def loss(self):
        return loss_criterion(self.base[0], self.settings["rel_tol"], self.settings["abs_tol"])

    def _search(self, ranks, label: str, criteria: dict) -> SearchResult:
        pruner = Pruner(self.evaluated, ranks)

        def at(alpha: float) -> tuple[float, float]:
            if pruner.prune_to(alpha) == pruner.total:
                return self.base  # nothing pruned: the unpruned model's loss, already known
            return self._loss_acc()

        try:
            result = search_prunability(at, criteria, pruner.total, self.settings["resolution"], self.settings["alpha_min"])
        finally:
            pruner.restore()
        alpha = result.alphas["loss"]
        self.log(f"{label}: kept fraction {alpha:.4f} ({result.kept('loss'):.0f}/{result.total}), {len(result.curve)} evaluations")
        return result

    @cached_property
    def magnitude(self) -> SearchResult:
        """Global magnitude: the loss criterion, the accuracy criterion and the tolerance sweep."""
        s = self.settings
        criteria = {"loss": self.loss, "acc": accuracy_criterion(self.base[1], s["acc_tol"])}
        criteria.update({sweep_name(e): loss_criterion(self.base[0], e, s["abs_tol"]) for e in s["rel_tol_sweep"]})
        return self._search(self.magnitude_ranks, "global magnitude", criteria)

    @cached_property
    def layerwise(self) -> SearchResult:
        return self._search(layerwise_magnitude_ranks(prunable_weights(self.model)), "layerwise magnitude", {"loss": self.loss})

    @cached_property
    def bn_folded(self) -> SearchResult:
        if not has_batchnorm(self.model):
            return self.magnitude  # folding changes nothing: the same ranking
        ranks = magnitude_ranks(prunable_weights(self.evaluated))
        return self._search(ranks, "magnitude of BN-folded weights", {"loss": self.loss})

    @cached_property
    def random(self) -> list[SearchResult]:
        weights = prunable_weights(self.model)
        return [self._search(random_ranks(weights, seed), f"random seed {seed}", {"loss": self.loss}) for seed in range(self.settings["random_seeds"])]

    def instability(self, split: str, alpha: float) -> float:
        """(acc before - acc after) / acc before of one-shot global magnitude pruning to alpha."""
        pruner = Pruner(self.evaluated, self.magnitude_ranks)
        before = self.base[1] if split == "train" else self.base_test_acc
        try:
            pruner.prune_to(alpha)
            after = self._loss_acc(split)[1]
        finally:
            pruner.restore()
        return (before - after) / before if before > 0 else float("nan")

    def details(self) -> dict:
        curves = {"magnitude": self.magnitude.curve, "layerwise": self.layerwise.curve}
        if self.bn_folded is not self.magnitude:
            curves["bn_folded"] = self.bn_folded.curve
        curves.update({f"random_seed_{i}": r.curve for i, r in enumerate(self.random)})
        return {
            "base_train_loss": self.base[0],
            "base_train_acc": self.base[1],
            "loss_bound": self.loss.bound,
            "prunable_weights": self.magnitude.total,
            "at_lower_limit": self.magnitude.at_lower_limit,
            "magnitude_alphas": self.magnitude.alphas,
            "random_alphas": [r.alphas["loss"] for r in self.random],
            "random_alpha_std": float(np.std([r.alphas["loss"] for r in self.random])),
            "curves": curves,
        }


@register("pruning", "prunability", orientation=+1)
def prunability(ctx: PruningContext) -> float:
    """Smallest kept fraction of Conv/Linear weights under global magnitude pruning with the training loss within tolerance."""
    return ctx.magnitude.alphas["loss"]


@register("pruning", "prunability_acc", orientation=+1)
def prunability_acc(ctx: PruningContext) -> float:
    """The same, with training accuracy at most acc_tol below the unpruned model's as the criterion."""
    return ctx.magnitude.alphas["acc"]


@register("pruning", "prunability_layerwise", orientation=+1)
def prunability_layerwise(ctx: PruningContext) -> float:
    """The same loss criterion, every layer pruned to the same kept fraction by magnitude."""
    return ctx.layerwise.alphas["loss"]


@register("pruning", "prunability_bn_folded", orientation=+1)
def prunability_bn_folded(ctx: PruningContext) -> float:
    """The same loss criterion, magnitudes ranked on the BN-folded weights (as Dziugaite et al. 2020's norms)."""
    return ctx.bn_folded.alphas["loss"]


@register("pruning", "prunability_random", orientation=+1)
def prunability_random(ctx: PruningContext) -> float:
    """The same search with uniformly random global masks, mean over ``random_seeds`` seeds."""
    return float(np.mean([r.alphas["loss"] for r in ctx.random]))


@register("pruning", "kept_count", orientation=+1)
def kept_count(ctx: PruningContext) -> float:
    """kappa: the absolute number of weights kept at the prunability fraction."""
    return ctx.magnitude.kept("loss")


# Orientation +1 is the prunability hypothesis (a model that loses more accuracy when
# pruned is less compressible); Bartoldson et al.'s opposite finding concerns pruning
# *during* training, so the sign is for the statistics to show.
@register("pruning", "instability_train_{:g}", orientation=+1, over="instability_fractions")
def instability_train(ctx: PruningContext, alpha: float) -> float:
    """Relative training-accuracy drop right after one-shot global magnitude pruning to this kept fraction."""
    return ctx.instability("train", alpha)


@register("pruning", "instability_test_{:g}", orientation=+1, over="instability_fractions")
def instability_test(ctx: PruningContext, alpha: float) -> float:
    """Relative test-accuracy drop right after one-shot global magnitude pruning to this kept fraction (Bartoldson et al. 2020's instability, one-shot: our extension)."""
    return ctx.instability("test", alpha)
