"""Prune potential under distribution shift (Liebenwein et al. 2021, "Lost in Pruning"):
how far a network can be pruned before its accuracy on a distribution
falls more than delta below the unpruned network's on that same distribution.

Definitions (adapted from torchprune's paper/lost code,
https://github.com/lucaslie/torchprune/tree/main/paper/lost):

- **prune ratio** r = 1 - kept fraction of the prunable Conv/Linear weights, pruned by
  global magnitude (the ranking of the pruning family, ``prunability.pruning``) on the
  grid r = 0, h, 2h, ... up to ``prune_ratio_max`` (h = ``resolution``), one shot, no
  retraining (Liebenwein et al. retrain after each step: a difference, see README);
- **prune potential** on a distribution D': the largest r on the grid such that r and
  every smaller grid ratio keep acc(r, D') >= acc(0, D') - delta (delta = 0.005, their
  COMM_LEVEL). The "every smaller ratio" part is the project's robust rule
  (``criteria.robust_answer``): an isolated lucky ratio past a failure does not count.
  torchprune's commensurate-ratio code takes the largest passing ratio instead; the
  stored curves allow either;
- **excess error** at r on a corrupted set D' (nominal D = the clean test set):
  (err(r, D') - err(r, D)) - (err(0, D') - err(0, D)), averaged over the corruptions of
  one severity; its **slope** is the least-squares line through the origin,
  sum(r e(r)) / sum(r^2), over the grid ratios 0 < r <= ``excess_error_max_prune_ratio``;
- **input-noise test** (eps_ball.py): ``noise_images`` test images, each with
  ``noise_samples`` draws of uniform noise in [-eps, eps] added to the *normalised*
  input, for each eps of ``noise_eps``. Top-1 agreement is the share of (image, draw)
  whose pruned prediction equals the unpruned net's on the same noisy input; the
  commensurate prune ratio at eps is, per draw, the prune potential of the noisy
  accuracy (same delta, same robust rule), averaged over the draws.

Orientation (+1: larger predicts a larger generalization gap). A larger prune potential
is a more compressible network, the prunability hypothesis's sign for *better*
generalization: -1, as for the kept fraction's +1. The same for the commensurate ratio
under noise and for the agreement under noise (a pruned net that stays functionally
close to its parent). A steeper excess-error slope is a network whose pruned versions
lose more under shift than on clean data: +1. These are hypotheses; the statistics
report whichever sign the data show.
"""

from __future__ import annotations

import math
import os
from functools import cached_property, lru_cache

import numpy as np
import torch

from ..corruptions import load_corruptions, value_scale
from ..criteria import robust_answer
from ..io import InputFileError
from ..models import fold_batchnorm, has_batchnorm
from ..pruning import Pruner, magnitude_ranks, prunable_weights, sweep_alphas
from . import register, register_family

# What the workflow gives this family's jobs (prunability.families).
FAMILY = {"name": "prune_potential", "cost": "sweep", "cluster_group": None,
          "inputs": {"corruptions": "data/corruptions.npz"}, "order": 5, "roles": []}


# Accuracies are ratios of counts; delta * n can be an integer, where a float subtraction
# could tip an exact tie either way.
FLOAT_SLACK = 1e-9


# --------------------------------------------------------------------------- plain functions


def prune_ratio_grid(resolution: float, prune_ratio_max: float) -> list[float]:
    """r = 0, h, 2h, ... <= prune_ratio_max (the pruning family's sweep, as 1 - kept fraction)."""
    return [round(1.0 - a, 12) for a in sweep_alphas(resolution, 1.0 - prune_ratio_max)]


def prune_potential(ratios, accuracies, delta: float) -> float:
    """Largest ratio such that it and every smaller one keep accuracy >= the accuracy at
    ratio 0 (the unpruned net, which must be on the grid) - delta."""
    ratios = [float(r) for r in ratios]
    if 0.0 not in ratios:
        raise ValueError("the curve must contain the unpruned network (ratio 0)")
    base = accuracies[ratios.index(0.0)]
    curve = [{"alpha": 1.0 - r, "loss": float("nan"), "acc": a} for r, a in zip(ratios, accuracies)]
    kept, _ = robust_answer(curve, lambda loss, acc: math.isfinite(acc) and acc >= base - delta - FLOAT_SLACK)
    return round(1.0 - kept, 12)


def excess_error(acc_shifted, acc_nominal) -> np.ndarray:
    """(err(r, D') - err(r, D)) - (err(0, D') - err(0, D)) for every ratio r of the curves
    (position 0 is the unpruned net)."""
    shifted_err = 1.0 - np.asarray(acc_shifted, dtype=float)
    nominal_err = 1.0 - np.asarray(acc_nominal, dtype=float)
    gap = shifted_err - nominal_err
    return gap - gap[0]


def slope_through_origin(x, y) -> float:
    """Least-squares slope of y = s x (no intercept): sum(x y) / sum(x^2); NaN without x != 0."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    denominator = float(np.sum(x * x))
    return float(np.sum(x * y) / denominator) if denominator > 0 else float("nan")


def top1_agreement(predictions, reference) -> float:
    """Share of positions where two label tensors agree."""
    predictions, reference = torch.as_tensor(predictions), torch.as_tensor(reference)
    if predictions.shape != reference.shape:
        raise ValueError(f"shapes differ: {tuple(predictions.shape)} and {tuple(reference.shape)}")
    return float((predictions == reference).double().mean())


def distribution_key(name: str, severity: int) -> str:
    return f"{name}/s{severity}"


# --------------------------------------------------------------------------- the family


@lru_cache(maxsize=1)
def _corruptions(path: str, mtime_ns: int) -> dict:
    """The corrupted sets, read (and decompressed) once per job, not once per model
    (``mtime_ns``: a rewritten file is read again)."""
    return load_corruptions(path)


@register_family(FAMILY["name"])
class PrunePotentialContext:
    def __init__(self, model, init_model, data, settings, log, summary):
        self.data, self.settings, self.log = data, settings, log
        # BatchNorm folded into the convs: the same function, faster (as the pruning
        # family); zeroing a raw weight zeroes its folded weight, so the raw model's
        # magnitude ranking applies unchanged.
        self.model = fold_batchnorm(model) if has_batchnorm(model) else model
        self.model.eval()
        self.ranks = magnitude_ranks(prunable_weights(model))
        self.ratios = prune_ratio_grid(settings["resolution"], settings["prune_ratio_max"])
        path = settings["corruptions_file"]
        corrupted = _corruptions(path, os.stat(path).st_mtime_ns)
        wanted = [(n, s) for n in settings["corruptions"] for s in settings["severities"]]
        missing = [distribution_key(n, s) for n, s in wanted if n not in corrupted["names"] or s not in corrupted["severities"]]
        if missing:
            raise InputFileError(f"{settings['corruptions_file']} lacks {', '.join(missing)}: rerun corrupt_data")
        self.scale = value_scale(corrupted["pixel_max"])
        self.sets = {
            distribution_key(n, s): torch.from_numpy(corrupted["images"][corrupted["names"].index(n), corrupted["severities"].index(s)]).to(data.x_test.device)
            for n, s in wanted
        }
        if any(x.shape != data.x_test.shape for x in self.sets.values()):
            raise InputFileError(f"{path}: the corrupted sets do not match the test split's shape: rerun corrupt_data")

    # ---------------------------------------------------------------- evaluations

    @torch.inference_mode()
    def _predict(self, x: torch.Tensor, scale: float | None) -> torch.Tensor:
        """Top-1 labels of a uint8 set (``scale`` the factor to the split's values) or of
        normalised inputs (``scale`` None), in batches."""
        batch = self.settings["eval_batch_size"]
        out = []
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            if scale is not None:
                chunk = self.data.normalize(chunk.float() / scale)
            out.append(self.model(chunk).argmax(dim=1))
        return torch.cat(out)

    def _accuracies(self) -> dict[str, float]:
        y = self.data.y_test
        acc = {
            "train": float((self._predict(self.data.x_train, 1.0) == self.data.y_train).double().mean()),
            "test": float((self._predict(self.data.x_test, 1.0) == y).double().mean()),
        }
        for key, x in self.sets.items():
            acc[key] = float((self._predict(x, self.scale) == y).double().mean())
        return acc

    @cached_property
    def curves(self) -> dict[str, list[float]]:
        """Accuracy on every distribution at every grid ratio."""
        pruner = Pruner(self.model, self.ranks)
        curves: dict[str, list[float]] = {}
        try:
            for i, ratio in enumerate(self.ratios):
                pruner.prune_to(1.0 - ratio)
                for key, acc in self._accuracies().items():
                    curves.setdefault(key, []).append(acc)
                if i % 5 == 0 or i == len(self.ratios) - 1:
                    self.log(f"prune ratio {ratio:.3f} ({i + 1}/{len(self.ratios)}): test acc {curves['test'][-1]:.4f}")
        finally:
            pruner.restore()
        return curves

    @cached_property
    def potentials(self) -> dict[str, float]:
        delta = self.settings["delta"]
        return {key: prune_potential(self.ratios, accs, delta) for key, accs in self.curves.items()}

    def corrupted_potentials(self, severity: int) -> list[float]:
        return [self.potentials[distribution_key(n, severity)] for n in self.settings["corruptions"]]

    @cached_property
    def excess_errors(self) -> dict[str, list[float]]:
        """Excess error against the clean test set, per corrupted set and as the mean over
        the corruptions of each severity (key "mean/s<k>")."""
        nominal = self.curves["test"]
        out = {key: excess_error(self.curves[key], nominal).tolist() for key in self.sets}
        for s in self.settings["severities"]:
            out[f"mean/s{s}"] = np.mean([out[distribution_key(n, s)] for n in self.settings["corruptions"]], axis=0).tolist()
        return out

    def excess_error_slope(self, severity: int) -> float:
        r = np.asarray(self.ratios)
        use = (r > 0) & (r <= self.settings["excess_error_max_prune_ratio"] + FLOAT_SLACK)
        return slope_through_origin(r[use], np.asarray(self.excess_errors[f"mean/s{severity}"])[use])

    # ---------------------------------------------------------------- input noise

    @cached_property
    def noise(self) -> dict:
        """Agreement with the unpruned net and noisy accuracy at every (ratio, eps, draw)."""
        s = self.settings
        eps_values = s["noise_eps"]
        n = min(s["noise_images"], len(self.data.y_test))
        x = self.data.normalized("test")[:n]
        y = self.data.y_test[:n]
        draws = s["noise_samples"]

        def unit_noise(draw: int) -> torch.Tensor:
            # The same draw for every ratio and eps (common random numbers), in [-1, 1].
            g = torch.Generator().manual_seed(s["seed"] * 1_000_003 + draw)
            return (2.0 * torch.rand(x.shape, generator=g) - 1.0).to(x.device)

        pruner = Pruner(self.model, self.ranks)
        agreement = np.zeros((len(self.ratios), len(eps_values), draws))
        accuracy = np.zeros((len(self.ratios), len(eps_values), draws))
        reference: dict[tuple[int, int], torch.Tensor] = {}
        try:
            for i, ratio in enumerate(self.ratios):
                pruner.prune_to(1.0 - ratio)
                for d in range(draws):
                    u = unit_noise(d)
                    for j, eps in enumerate(eps_values):
                        pred = self._predict(x + eps * u, None)
                        if i == 0:  # ratio 0: the unpruned net is the reference
                            reference[j, d] = pred
                        agreement[i, j, d] = top1_agreement(pred, reference[j, d])
                        accuracy[i, j, d] = float((pred == y).double().mean())
                if i % 5 == 0 or i == len(self.ratios) - 1:
                    self.log(f"input noise: prune ratio {ratio:.3f} ({i + 1}/{len(self.ratios)}) done")
        finally:
            pruner.restore()
        commensurate = [
            float(np.mean([prune_potential(self.ratios, accuracy[:, j, d].tolist(), s["delta"]) for d in range(draws)]))
            for j in range(len(eps_values))
        ]
        return {"agreement": agreement.mean(axis=2), "accuracy": accuracy.mean(axis=2), "commensurate": commensurate, "images": n}

    def eps_index(self, eps: float) -> int:
        return list(self.settings["noise_eps"]).index(eps)

    def details(self) -> dict:
        out = {
            "prune_ratios": self.ratios,
            "accuracy_curves": self.curves,
            "prune_potentials": self.potentials,
            "excess_error": self.excess_errors,
            "excess_error_slopes": {f"s{s}": self.excess_error_slope(s) for s in self.settings["severities"]},
            "prunable_weights": sum(r.numel() for r in self.ranks.values()),
        }
        if self.settings["noise_eps"] and self.settings["noise_samples"]:
            out["noise"] = {
                "eps": list(self.settings["noise_eps"]),
                "images": self.noise["images"],
                "samples": self.settings["noise_samples"],
                "agreement": self.noise["agreement"].tolist(),  # [ratio][eps]
                "accuracy": self.noise["accuracy"].tolist(),  # [ratio][eps], mean over draws
                "commensurate_prune_ratio": self.noise["commensurate"],  # [eps]
            }
        return out


# --------------------------------------------------------------------------- the measures


@register("prune_potential", "prune_potential_test", orientation=-1)
def prune_potential_test(ctx: PrunePotentialContext) -> float:
    """Largest prune ratio (global magnitude) keeping clean test accuracy within delta of the unpruned net's (Liebenwein et al. 2021)."""
    return ctx.potentials["test"]


@register("prune_potential", "prune_potential_train", orientation=-1)
def prune_potential_train(ctx: PrunePotentialContext) -> float:
    """The same on the training set."""
    return ctx.potentials["train"]


@register("prune_potential", "prune_potential_corrupt_mean_s{}", orientation=-1, over="severities")
def prune_potential_corrupt_mean(ctx: PrunePotentialContext, severity: int) -> float:
    """Prune potential on each corrupted test set of this severity, mean over the corruptions."""
    return float(np.mean(ctx.corrupted_potentials(severity)))


@register("prune_potential", "prune_potential_corrupt_min_s{}", orientation=-1, over="severities")
def prune_potential_corrupt_min(ctx: PrunePotentialContext, severity: int) -> float:
    """Prune potential on each corrupted test set of this severity, minimum over the corruptions."""
    return float(np.min(ctx.corrupted_potentials(severity)))


@register("prune_potential", "excess_error_slope_s{}", orientation=+1, over="severities")
def excess_error_slope(ctx: PrunePotentialContext, severity: int) -> float:
    """Slope through the origin of the excess error (mean over this severity's corruptions) against the prune ratio."""
    return ctx.excess_error_slope(severity)


@register("prune_potential", "noise_commensurate_prune_ratio_eps{:g}", orientation=-1, over="noise_eps")
def noise_commensurate_prune_ratio(ctx: PrunePotentialContext, eps: float) -> float:
    """Prune potential of the accuracy under uniform input noise of this eps (mean over the noise draws)."""
    return ctx.noise["commensurate"][ctx.eps_index(eps)]


@register("prune_potential", "noise_agreement_eps{:g}", orientation=-1, over="noise_eps")
def noise_agreement(ctx: PrunePotentialContext, eps: float) -> float:
    """Top-1 agreement under uniform input noise of this eps between the net pruned to its clean-test prune potential and the unpruned net."""
    return float(ctx.noise["agreement"][ctx.ratios.index(ctx.potentials["test"]), ctx.eps_index(eps)])
