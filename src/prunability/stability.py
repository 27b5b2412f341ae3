"""Pruning during training on a schedule, and its noise-injection control (Bartoldson et
al. 2020, "The Generalization-Stability Tradeoff in Neural Network Pruning"; adapted from
https://github.com/bbartoldson/GeneralizationStabilityTradeoff). The arithmetic of
instability and the statistics across runs are in prunability.stability_analysis (no
torch there).

Targeted layers: conv layers picked by index (Python style, -1 = the last) among the
model's *targetable* convs: every Conv2d in module order except the NiN head (its
channels are the class scores) and ResNet shortcut convs (they feed an addition). Each
targeted layer has a final prune fraction and start/end epochs; with retrain period P it
is pruned at the end of epochs start, start + P, ... <= end (epochs counted from 1, so
the paper's 0-based epoch index e is our epoch e + 1). At the t-th of its T pruning
epochs a layer of N filters keeps

    kept_t = ceil(final + (N - final) (T - t) / T),   final = ceil((1 - prune_frac) N),

computed exactly (decimal prune fractions as fractions, so 0.3 is 3/10, not float noise).

Targets: ``smallest`` / ``largest`` / ``random`` remove the filters (output channels)
of smallest / largest score (L2 or L1 norm of the filter's weights), or random ones,
among those still kept (Prune_S / Prune_L / Prune_R); the following BatchNorm channel
(gamma and beta) and the conv bias are masked too, so the channel outputs exactly zero.
``magnitude`` removes single weights of the layer instead (unstructured, per layer,
smallest |w| first; N = the layer's weight count). Masks are plain dicts {parameter
name: 0/1 tensor} (as prunability.pruning), applied after every optimizer step, so a
removed filter stays zero for good.

Noise control (no permanent removal): at each scheduled event the filters the target
would remove are chosen the same way, but only *held*: zeroed (``zero``) or given
additive Gaussian noise (``gaussian``; the std of the weights of the first filter not
targeted, as the official code) at the event and before each of the next ``batches``
training batches, counted per layer (another layer's event does not end a hold; the same
layer's next event does). ``filters: new`` holds the newly targeted filters (Fig. 5),
``all`` every filter of the layer targeted so far (Fig. D2). With ``restore`` the held
filters, and in ``zero`` mode their BatchNorm gamma and beta (held at zero too) and
running statistics (not zeroed), get back the values saved at the event before the next
batch after the hold (Fig. D2); without it training resumes from the held values and can
regrow them (Fig. 5).

Resume: ``train_run`` with a ``checkpoint`` path writes, every ``checkpoint_every``
epochs (spaced by ``checkpoint_min_interval_s`` seconds) and at the last one, the whole
state of the run: weights, optimizer, LR schedule, the generator, the global RNG, the
log so far and the pruner's or noise control's state (masks, targeted filters, holds in
progress and their saved values). A rerun with the same settings continues from it and
ends, on the same device, bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .stability_analysis import STRUCTURED_TARGETS, TARGETS, instability, run_outcome, stability_percent
from .io import save_torch
from .numerics import configure_numerics
from .train import DeviceData, _read_checkpoint, evaluate, make_optimizer, model_for, resolve_device

Masks = dict[str, torch.Tensor]


class StabilityError(ValueError):
    """Settings that do not fit the model (e.g. a layer index out of range)."""


# --------------------------------------------------------------------------- schedule


def pruning_epochs(start: int, end: int, period: int) -> list[int]:
    """The epochs (counted from 1) at whose end a layer is pruned: start, start + period, ... <= end."""
    if start < 1 or end < start or period < 1:
        raise StabilityError(f"need 1 <= start <= end and period >= 1, got start {start}, end {end}, period {period}")
    return list(range(start, end + 1, period))


def _exact(value: float) -> Fraction:
    """A decimal setting as the fraction it spells (0.3 -> 3/10), not its binary float."""
    return Fraction(repr(float(value)))


def final_kept(n: int, prune_frac: float) -> int:
    """ceil((1 - prune_frac) N): what a layer of N filters (or weights) keeps in the end."""
    return math.ceil((1 - _exact(prune_frac)) * n)


def kept_at(n: int, prune_frac: float, t: int, total: int) -> int:
    """Kept count after the t-th of ``total`` pruning iterations (t = 1 .. total):
    ceil(final + (N - final) (T - t) / T)."""
    if not 1 <= t <= total:
        raise StabilityError(f"iteration t must lie in 1..{total}, got {t}")
    final = final_kept(n, prune_frac)
    return math.ceil(final + Fraction((n - final) * (total - t), total))


# --------------------------------------------------------------------------- layers


def targetable_convs(model: nn.Module) -> dict[str, nn.Conv2d]:
    """The Conv2d layers that can be targeted, by module name in module order: all but
    the NiN head conv (class scores) and ResNet shortcut convs (they feed an addition
    that a masked filter would not silence)."""
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d) and not name.startswith("head.") and "shortcut" not in name.split(".")
    }


def following_batchnorm(model: nn.Module, conv_name: str) -> tuple[str, nn.BatchNorm2d] | None:
    """The BatchNorm2d that normalises ``conv_name``'s output: the next BatchNorm2d in
    module order before any other conv, with one channel per filter; None if there is
    none (a model without BN)."""
    modules = list(model.named_modules())
    start = [name for name, _ in modules].index(conv_name)
    conv = modules[start][1]
    for name, module in modules[start + 1 :]:
        if isinstance(module, nn.Conv2d):
            return None
        if isinstance(module, nn.BatchNorm2d) and module.num_features == conv.out_channels:
            return name, module
    return None


@dataclass
class TargetedLayer:
    name: str  # module name of the conv
    conv: nn.Conv2d
    bn_name: str | None
    bn: nn.BatchNorm2d | None
    prune_frac: float
    epochs: list[int]  # its pruning epochs under this run's retrain period

    def parameters(self, with_bn: bool = True) -> dict[str, torch.Tensor]:
        """The tensors a structured mask touches: conv weight and bias, BN gamma and beta."""
        params = {f"{self.name}.weight": self.conv.weight}
        if self.conv.bias is not None:
            params[f"{self.name}.bias"] = self.conv.bias
        if with_bn and self.bn is not None:
            params[f"{self.bn_name}.weight"] = self.bn.weight
            params[f"{self.bn_name}.bias"] = self.bn.bias
        return params

    def to_remove(self, epoch: int, alive: torch.Tensor) -> int:
        """How many of the ``alive`` (bool per filter or weight) the schedule removes at
        ``epoch``: down to its kept count at that event (0 if not an event of this layer)."""
        if epoch not in self.epochs:
            return 0
        kept = kept_at(alive.numel(), self.prune_frac, self.epochs.index(epoch) + 1, len(self.epochs))
        return int(alive.sum()) - kept


def targeted_layers(model: nn.Module, layer_settings: list[dict], retrain_period: int) -> list[TargetedLayer]:
    """The layers of ``layer_settings`` (index, prune_frac, start_epoch, end_epoch) in
    ``model``, with their pruning epochs; a clear error for an index out of range or a
    layer given twice."""
    convs = list(targetable_convs(model).items())
    layers, seen = [], {}
    for i, setting in enumerate(layer_settings):
        index = setting["index"]
        if not -len(convs) <= index < len(convs):
            raise StabilityError(
                f"generalization_stability.layers[{i}].index: {index} is out of range; the model has "
                f"{len(convs)} targetable conv layers ({', '.join(name for name, _ in convs)}), indices "
                f"{-len(convs)} .. {len(convs) - 1}")
        name, conv = convs[index]
        if name in seen:
            raise StabilityError(f"generalization_stability.layers[{i}].index: {index} is layer {name}, "
                                 f"already targeted by layers[{seen[name]}]")
        seen[name] = i
        bn = following_batchnorm(model, name)
        layers.append(TargetedLayer(name, conv, bn[0] if bn else None, bn[1] if bn else None, setting["prune_frac"],
                                    pruning_epochs(setting["start_epoch"], setting["end_epoch"], retrain_period)))
    return layers


# --------------------------------------------------------------------------- choosing what to remove


def filter_scores(weight: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """One score per filter (output channel): the L2 or L1 norm of its weights."""
    p = {"l2": 2, "l1": 1}[norm]
    return weight.detach().flatten(1).norm(p=p, dim=1)


def choose(scores: torch.Tensor, alive: torch.Tensor, k: int, target: str, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``k`` entries to remove among the ``alive`` ones (a bool tensor like
    ``scores``): the smallest or largest scores (ties: the lower index first), or a
    uniform random draw from ``generator``."""
    candidates = torch.nonzero(alive.flatten().cpu(), as_tuple=False).flatten()
    if not 0 <= k <= len(candidates):
        raise StabilityError(f"cannot remove {k} of {len(candidates)} kept entries")
    if target == "random":
        return candidates[torch.randperm(len(candidates), generator=generator)[:k]].sort().values
    values = scores.detach().flatten().cpu()[candidates]
    order = torch.argsort(values, descending=(target == "largest"), stable=True)
    return candidates[order[:k]].sort().values


def structured_masks(layer: TargetedLayer, alive: torch.Tensor) -> Masks:
    """0/1 masks that zero the removed filters of ``layer`` (``alive`` false), their
    bias, and their BatchNorm gamma and beta."""
    masks = {}
    for name, param in layer.parameters().items():
        shape = (-1,) + (1,) * (param.dim() - 1)
        masks[name] = alive.to(param.device, param.dtype).view(shape).expand_as(param).clone()
    return masks


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Multiply every masked parameter by its mask, in place."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        params[name].mul_(mask.to(params[name].device))


# --------------------------------------------------------------------------- pruning on a schedule


@dataclass
class SchedulePruner:
    """Removes filters (or weights, ``magnitude``) of the targeted layers at their
    pruning epochs; ``masks`` holds the permanent masks, re-applied after every step."""

    model: nn.Module
    layers: list[TargetedLayer]
    target: str
    score: str
    generator: torch.Generator
    alive: dict[str, torch.Tensor] = field(default_factory=dict)
    masks: Masks = field(default_factory=dict)

    def __post_init__(self):
        if self.target not in TARGETS:
            raise StabilityError(f"unknown target {self.target!r} ({', '.join(TARGETS)})")
        for layer in self.layers:
            shape = (layer.conv.out_channels,) if self.target in STRUCTURED_TARGETS else layer.conv.weight.shape
            self.alive[layer.name] = torch.ones(shape, dtype=torch.bool)

    def kept(self) -> dict[str, int]:
        return {name: int(alive.sum()) for name, alive in self.alive.items()}

    @torch.no_grad()
    def prune(self, epoch: int) -> int:
        """Prune every layer scheduled at ``epoch`` to its kept count; the number of
        filters (or weights) removed."""
        removed = 0
        for layer in self.layers:
            alive = self.alive[layer.name]
            k = layer.to_remove(epoch, alive)
            if k <= 0:
                continue
            if self.target in STRUCTURED_TARGETS:
                scores = filter_scores(layer.conv.weight, self.score)
            else:  # magnitude: single weights, smallest |w| first
                scores = layer.conv.weight.detach().abs()
            gone = choose(scores, alive, k, "smallest" if self.target == "magnitude" else self.target, self.generator)
            alive.view(-1)[gone] = False
            if self.target in STRUCTURED_TARGETS:
                self.masks.update(structured_masks(layer, alive))
            else:
                self.masks[f"{layer.name}.weight"] = alive.to(layer.conv.weight.device, layer.conv.weight.dtype)
            removed += k
        apply_masks(self.model, self.masks)
        return removed

    def after_step(self) -> None:
        apply_masks(self.model, self.masks)

    def state_dict(self) -> dict:
        return {"alive": self.alive, "masks": self.masks}

    def load_state_dict(self, state: dict) -> None:
        params = dict(self.model.named_parameters())
        self.alive = {name: alive.clone() for name, alive in state["alive"].items()}
        self.masks = {name: mask.to(params[name].device) for name, mask in state["masks"].items()}


# --------------------------------------------------------------------------- noise control


@dataclass
class NoiseControl:
    """Holds the filters a target would remove at zero or under Gaussian noise for a
    number of batches, without removing them (module docstring)."""

    model: nn.Module
    layers: list[TargetedLayer]
    target: str
    score: str
    mode: str  # zero | gaussian
    batches: int
    filters: str  # new | all
    restore: bool
    generator: torch.Generator
    targeted: dict[str, torch.Tensor] = field(default_factory=dict)
    held: dict[str, torch.Tensor] = field(default_factory=dict)  # layer -> filter indices held now
    saved: dict[str, torch.Tensor] = field(default_factory=dict)  # "layer|tensor" -> values at the layer's event
    remaining: dict[str, int] = field(default_factory=dict)  # layer -> training batches still to hold
    active: bool = False  # any layer held

    def __post_init__(self):
        if self.target not in STRUCTURED_TARGETS:
            raise StabilityError(f"noise.target must be one of {STRUCTURED_TARGETS}, got {self.target!r}")
        if self.mode not in ("zero", "gaussian"):
            raise StabilityError(f"noise mode must be zero or gaussian, got {self.mode!r}")
        for layer in self.layers:
            self.targeted[layer.name] = torch.zeros(layer.conv.out_channels, dtype=torch.bool)

    def _tensors(self, layer: TargetedLayer) -> dict[str, torch.Tensor]:
        """What a hold touches and a restore puts back: the conv's weight and bias, and in
        zero mode with restore also BN gamma, beta and running statistics."""
        tensors = layer.parameters(with_bn=self.mode == "zero" and self.restore)
        if self.mode == "zero" and self.restore and layer.bn is not None:
            tensors[f"{layer.bn_name}.running_mean"] = layer.bn.running_mean
            tensors[f"{layer.bn_name}.running_var"] = layer.bn.running_var
        return tensors

    @torch.no_grad()
    def event(self, epoch: int) -> int:
        """Target the scheduled filters of ``epoch`` and hold them now; the number newly
        targeted (0: no event). Holds are per layer: a layer's new event ends its own
        previous hold first (restoring), while other layers' holds go on."""
        newly = 0
        for layer in self.layers:
            targeted = self.targeted[layer.name]
            k = layer.to_remove(epoch, ~targeted)
            if k <= 0:
                continue
            if layer.name in self.held:
                self._end(layer)
            new = choose(filter_scores(layer.conv.weight, self.score), ~targeted, k, self.target, self.generator)
            targeted[new] = True
            idx = new if self.filters == "new" else torch.nonzero(targeted).flatten()
            self.held[layer.name] = idx
            if self.restore:
                self.saved.update({f"{layer.name}|{tname}": tensor[idx.to(tensor.device)].clone()
                                   for tname, tensor in self._tensors(layer).items()})
            self.remaining[layer.name] = self.batches
            self._apply(layer)
            newly += k
        self.active = bool(self.held)
        return newly

    @torch.no_grad()
    def _apply(self, layer: TargetedLayer) -> None:
        idx = self.held[layer.name].to(layer.conv.weight.device)
        if self.mode == "gaussian":
            free = torch.nonzero(~self.targeted[layer.name]).flatten()
            std = layer.conv.weight[int(free[0])].std().item() if len(free) else 0.0
            noise = torch.randn(layer.conv.weight[idx].shape, generator=self.generator) * std
            layer.conv.weight[idx] += noise.to(layer.conv.weight.device)
        else:
            for tname, tensor in self._tensors(layer).items():
                if not tname.endswith(("running_mean", "running_var")):
                    tensor[idx] = 0

    @torch.no_grad()
    def _end(self, layer: TargetedLayer) -> None:
        idx = self.held.pop(layer.name).to(layer.conv.weight.device)
        del self.remaining[layer.name]
        if self.restore:
            for tname, tensor in self._tensors(layer).items():
                tensor[idx] = self.saved.pop(f"{layer.name}|{tname}")

    def before_batch(self) -> None:
        """Hold each held layer's filters for this batch, or end its hold (restoring) once
        its ``batches`` are done."""
        if not self.active:
            return
        for layer in self.layers:
            if layer.name not in self.held:
                continue
            if self.remaining[layer.name] > 0:
                self._apply(layer)
                self.remaining[layer.name] -= 1
            else:
                self._end(layer)
        self.active = bool(self.held)

    def state_dict(self) -> dict:
        """Everything a hold in progress needs to go on after a resume; the noise itself is
        drawn from the generator, whose state the run saves."""
        return {"targeted": self.targeted, "held": self.held, "saved": self.saved, "remaining": self.remaining,
                "active": self.active}

    def load_state_dict(self, state: dict) -> None:
        devices = {layer.name: layer.conv.weight.device for layer in self.layers}
        self.targeted = {name: t.clone() for name, t in state["targeted"].items()}
        self.held = {name: idx.clone() for name, idx in state["held"].items()}
        self.saved = {key: v.to(devices[key.split("|")[0]]) for key, v in state["saved"].items()}
        self.remaining = {name: int(n) for name, n in state["remaining"].items()}
        self.active = bool(state["active"])


# --------------------------------------------------------------------------- one run


@dataclass
class RunResult:
    epochs: list[dict]
    summary: dict


def _fingerprint(run: dict, settings: dict, model_cfg: dict, architecture: dict, numerics: dict) -> str:
    # what is trained; not the device (a GPU job's cuda:<index> may differ on a rerun)
    return json.dumps({"run": run, "settings": settings, "model": model_cfg, "architecture": architecture,
                       "numerics": numerics}, sort_keys=True, default=str)


def train_run(
    run: dict,
    settings: dict,
    model_cfg: dict,
    architecture: dict,
    split: dict,
    device: str,
    deterministic: bool,
    log: Callable[[str], None] = print,
    fp32_precision: str = "ieee",
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 1,
    checkpoint_min_interval_s: float = 0.0,
) -> RunResult:
    """Train one run of a study (``run`` from stability_analysis.plan_runs) with the
    study's recipe (``settings``: the generalization_stability section), pruning or
    holding its targeted layers on schedule, and log every epoch: train/test loss and
    accuracy, and at a pruning epoch the test accuracy just before and just after.
    With ``checkpoint``, resume from it and keep it up to date (module docstring)."""
    numerics = configure_numerics(deterministic, fp32_precision)
    dev = resolve_device(device)
    data = DeviceData.from_split(split, dev)
    recipe = settings["train"]
    torch.manual_seed(run["seed"])
    model = model_for(architecture, model_cfg, data).to(dev)
    optimizer = make_optimizer(recipe["optimizer"], model.parameters(), recipe["lr"], recipe["weight_decay"])
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=recipe["lr_milestones"], gamma=recipe["lr_decay"])
    generator = torch.Generator().manual_seed(run["seed"])  # data order, random targets, noise

    pruner = noise = None
    layers = []
    if run["kind"] != "baseline":
        layers = targeted_layers(model, settings["layers"], run["retrain_period"])
    if run["kind"] == "prune":
        pruner = SchedulePruner(model, layers, run["target"], settings["score"], generator)
    elif run["kind"] == "noise":
        n = settings["noise"]
        noise = NoiseControl(model, layers, run["target"], settings["score"], run["mode"], n["batches"], n["filters"],
                             n["restore"], generator)
    rows, elapsed, resumed_from = [], 0.0, None
    fingerprint = _fingerprint(run, settings, model_cfg, architecture, numerics)
    state = _read_checkpoint(Path(checkpoint), log) if checkpoint is not None else None
    if state is not None:
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if dev.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], dev)
            if pruner is not None:
                pruner.load_state_dict(state["pruner"])
            if noise is not None:
                noise.load_state_dict(state["noise"])
            rows, elapsed, resumed_from = state["epochs"], state["elapsed"], state["epoch"]
            log(f"resumed from {checkpoint} at epoch {resumed_from}")
        else:
            log(f"ignoring {checkpoint}: it belongs to other settings")
    counts = {layer.name: (layer.conv.out_channels if run.get("target") != "magnitude" else layer.conv.weight.numel())
              for layer in layers}
    log(f"run {run} on {dev}: {sum(p.numel() for p in model.parameters())} parameters; targeted layers "
        + (", ".join(f"{l.name} ({counts[l.name]} {'weights' if run.get('target') == 'magnitude' else 'filters'}, "
                     f"prune {l.prune_frac:g} at epochs {l.epochs[0]}..{l.epochs[-1]} x{len(l.epochs)})" for l in layers)
           or "none"))

    n, batch_size, eval_bs = len(data.y_train), recipe["batch_size"], recipe["eval_batch_size"]
    started = time.perf_counter() - elapsed
    last_checkpoint = time.perf_counter()
    for epoch in range(len(rows) + 1, recipe["epochs"] + 1):
        model.train()
        order = torch.randperm(n, generator=generator).to(dev)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            if noise is not None:
                noise.before_batch()
            loss = F.cross_entropy(model(data.normalized("train")[idx]), data.y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if pruner is not None:
                pruner.after_step()
        lr = optimizer.param_groups[0]["lr"]
        schedule.step()
        row = {"epoch": epoch, "lr": lr, "removed": 0, "pruned_epoch": False, "pre_prune_test_loss": math.nan,
               "pre_prune_test_acc": math.nan, "instability": math.nan, "stability": math.nan}
        if any(epoch in layer.epochs for layer in layers):
            before_loss, before_acc = evaluate(model, data, "test", eval_bs)
            removed = pruner.prune(epoch) if pruner is not None else noise.event(epoch)
            if removed:
                row.update(removed=removed, pruned_epoch=True, pre_prune_test_loss=before_loss,
                           pre_prune_test_acc=before_acc)
        row["train_loss"], row["train_acc"] = evaluate(model, data, "train", eval_bs)
        row["test_loss"], row["test_acc"] = evaluate(model, data, "test", eval_bs)
        if row["pruned_epoch"]:
            row["instability"] = instability(row["pre_prune_test_acc"], row["test_acc"])
            row["stability"] = stability_percent(row["instability"])
        if pruner is not None:
            row.update({f"kept.{name}": kept for name, kept in pruner.kept().items()})
        elif noise is not None:
            row.update({f"kept.{name}": int((~t).sum()) for name, t in noise.targeted.items()})
        row["wall_time_s"] = time.perf_counter() - started
        rows.append(row)
        event = (f"  pruned {row['removed']}: test acc {row['pre_prune_test_acc']:.4f} -> {row['test_acc']:.4f} "
                 f"(stability {row['stability']:.2f}%)" if row["pruned_epoch"] else "")
        log(f"epoch {epoch:4d}/{recipe['epochs']}  train CE {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
            f"test CE {row['test_loss']:.4f} acc {row['test_acc']:.4f}{event}  ({row['wall_time_s']:.1f} s)")
        if not math.isfinite(row["train_loss"]):
            raise StabilityError(f"run diverged at epoch {epoch} (training loss {row['train_loss']}); lower the "
                                 "learning rate (generalization_stability.train.lr)")
        # The last epoch is checkpointed too: a kill before the outputs are written loses
        # no training. Spaced in time as train_model's: a kill loses at most the interval.
        due = (epoch % checkpoint_every == 0
               and time.perf_counter() - last_checkpoint >= checkpoint_min_interval_s)
        if checkpoint is not None and (due or epoch == recipe["epochs"]):
            last_checkpoint = time.perf_counter()
            save_torch(checkpoint, dict(
                fingerprint=fingerprint, model=model.state_dict(), optimizer=optimizer.state_dict(),
                schedule=schedule.state_dict(), generator=generator.get_state(), torch_rng=torch.get_rng_state(),
                cuda_rng=torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                pruner=pruner.state_dict() if pruner is not None else None,
                noise=noise.state_dict() if noise is not None else None,
                epoch=epoch, elapsed=row["wall_time_s"], epochs=rows,
            ))

    outcome = run_outcome(pd.DataFrame(rows))
    log(f"mean stability {outcome['mean_stability']:.3f}%, best test acc after pruning "
        f"{outcome['best_test_acc']:.4f} at epoch {outcome['best_epoch']} (gap {outcome['gap_at_best']:.4f})")
    summary = {
        "run": run,
        **outcome,
        "epochs": recipe["epochs"],
        "layers": [{"name": l.name, "batchnorm": l.bn_name, "count": counts[l.name], "prune_frac": l.prune_frac,
                    "final_kept": final_kept(counts[l.name], l.prune_frac), "pruning_epochs": l.epochs}
                   for l in layers],
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "wall_time_s": time.perf_counter() - started,
        "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "torch_threads": torch.get_num_threads(),
        "numerics": numerics,
        "resumed_from_epoch": resumed_from,
    }
    return RunResult(rows, summary)
