"""Training one grid cell: the loop, the stopping rule, and resume.

Stopping rule (Jiang et al. 2020, as reimplemented by Dziugaite et al. 2020): after every
epoch the cross-entropy over the *whole* training set is evaluated with the model in eval
mode and without augmentation; training stops once it is below ``ce_target``
(converged) or when ``max_epochs`` is reached (not converged). With
``stopping: budget`` (double-descent sweeps train every model for the same number of
epochs) every model trains ``max_epochs`` epochs and counts as converged unless it
diverged. A non-finite loss
stops training (on a CPU at once, on a GPU at the end of its epoch: see
``checks_loss_every_step``) and the model is recorded as diverged. The steps at which
the training CE first fell below 0.1 and 0.01 (checked at epoch ends) are the
optimization-speed measures of Jiang et al.

Resume: at the end of every ``checkpoint_every`` epochs, and at the last one, the
complete state (weights, optimizer, data-order generator, global RNG, curve so far)
is written atomically to a checkpoint outside the rule's declared outputs. A rerun
after a kill continues from it and ends with the same weights as an uninterrupted
run; a finished cell's checkpoint is returned as it is.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .io import InputFileError, load_torch, save_torch
from .models import build_model
from .numerics import configure_numerics, set_determinism  # noqa: F401 (importable here, as before numerics.py)
from .platform import describe
from .pruning import prunable_weights

CE_MILESTONES = (0.1, 0.01)  # Jiang's optimization-speed thresholds


# --------------------------------------------------------------------------- data on the device


@dataclass
class DeviceData:
    """uint8 images on the device; normalisation (training statistics) per batch."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    num_classes: int
    _normalized: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_split(cls, split: dict, device: torch.device | str) -> "DeviceData":
        c = split["x_train"].shape[1]
        return cls(
            x_train=split["x_train"].to(device),
            y_train=split["y_train"].to(device),
            x_test=split["x_test"].to(device),
            y_test=split["y_test"].to(device),
            mean=split["mean"].to(device).view(1, c, 1, 1),
            std=split["std"].to(device).view(1, c, 1, 1),
            num_classes=len(split["classes"]),
        )

    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return (x_uint8.float() - self.mean) / self.std

    def normalized(self, name: str) -> torch.Tensor:
        """The whole split ("train" or "test") normalised once and kept: every full pass
        (the evaluations of each epoch, each point of a pruning curve) and every batch
        without augmentation reads it. Element by element equal to ``normalize`` of any
        slice, so results do not change; it costs 4 bytes per pixel of memory."""
        if name not in self._normalized:
            with torch.inference_mode(False):  # a normal tensor, even when first asked for by evaluate
                self._normalized[name] = self.normalize(getattr(self, f"x_{name}"))
        return self._normalized[name]

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


@torch.inference_mode()  # no autograd bookkeeping at all: the evaluations are most of a pruning measure's time
def evaluate(model: nn.Module, data: DeviceData, split: str = "train", batch_size: int = 1024) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a whole split, eval mode, no augmentation."""
    x, y = data.normalized(split), data.split(split)[1]
    was_training = model.training
    model.eval()
    losses, correct = [], []
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])
        target = y[start : start + batch_size]
        losses.append(F.cross_entropy(logits.float(), target, reduction="sum"))
        correct.append((logits.argmax(1) == target).sum())
    model.train(was_training)
    # The batch sums are read once, not after every batch (a GPU would wait for the host
    # each time), and added as Python floats in batch order.
    return sum(torch.stack(losses).tolist()) / len(y), int(torch.stack(correct).sum()) / len(y)


def augment_draws(n: int, pad: int, flip: bool, generator: torch.Generator) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The random numbers of ``augment`` for n images, drawn from ``generator`` on the
    CPU (so a resumed run draws the same ones): crop offsets (2, n) and flip flags (n,)."""
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator) if pad > 0 else None
    flips = torch.rand(n, generator=generator) < 0.5 if flip else None
    return shifts, flips


def apply_augment(x: torch.Tensor, pad: int, shifts: torch.Tensor | None, flips: torch.Tensor | None) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` pixels, and random horizontal flip, as
    drawn by ``augment_draws`` (the draws on the images' device)."""
    n, _, h, w = x.shape
    if shifts is not None:
        padded = F.pad(x, (pad, pad, pad, pad))
        rows = (torch.arange(h, device=x.device)[None, :] + shifts[0][:, None])[:, :, None]
        cols = (torch.arange(w, device=x.device)[None, :] + shifts[1][:, None])[:, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()
    if flips is not None:
        x = torch.where(flips[:, None, None, None], x.flip(3), x)
    return x


def augment(x: torch.Tensor, pad: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` pixels, and random horizontal flip.

    Random numbers come from ``generator`` (on the CPU, so a resumed run draws the
    same ones); the images stay on their device.
    """
    shifts, flips = augment_draws(len(x), pad, flip, generator)
    return apply_augment(x, pad, *(d.to(x.device) if d is not None else None for d in (shifts, flips)))


def epoch_augment_draws(n: int, batch_size: int, pad: int, flip: bool, generator: torch.Generator, device) -> tuple:
    """Every batch's ``augment_draws`` of one epoch, drawn batch by batch in the order
    the loop uses them (so the numbers are those of per-batch draws) and moved to the
    device in one copy each: a copy per batch would make the host wait for a GPU at
    every step."""
    draws = [augment_draws(min(batch_size, n - start), pad, flip, generator) for start in range(0, n, batch_size)]
    return tuple(torch.cat([d[i] for d in draws], dim=-1).to(device) if draws and draws[0][i] is not None else None for i in (0, 1))


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r} (sgd, momentum, adam)")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device is 'cuda' in the configuration, but torch {torch.__version__} finds no CUDA device (a CPU-only "
            "build of torch, or no GPU in this job's allocation); install a CUDA build, or run on the CPU with "
            "--config device=cpu"
        )
    return torch.device(name)


def checks_loss_every_step(device: torch.device) -> bool:
    """Is a non-finite training loss caught at its step (True) or at the end of its epoch?

    Reading the loss costs nothing on a CPU but makes the host wait for a GPU at every
    step, so on a GPU the check is a flag kept on the device and read once per epoch:
    the rest of that epoch's steps are taken with non-finite weights, and the model is
    recorded as diverged either way."""
    return device.type == "cpu"


MODEL_HP = ("depth", "width", "batchnorm", "dropout")


def model_for(hp: dict, model_cfg: dict, data: DeviceData) -> nn.Module:
    """The architecture of a cell: grid hyperparameters plus the fixed model settings."""
    return build_model(
        model_cfg["arch"],
        in_channels=data.in_channels,
        num_classes=data.num_classes,
        image_size=data.image_size,
        base_width=model_cfg["base_width"],
        head_relu=model_cfg["head_relu"],
        **{k: hp[k] for k in MODEL_HP},
    )


# --------------------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    init_state: dict
    final_state: dict
    summary: dict
    curve: list[dict] = field(default_factory=list)


def _fingerprint(hp: dict, model_cfg: dict, train_cfg: dict) -> str:
    # train.checkpoint_* say when to checkpoint, not what is trained (as in train.smk's params)
    keep = {k: v for k, v in train_cfg.items() if not k.startswith("checkpoint_") and k != "device"}
    return json.dumps({"hp": hp, "model": model_cfg, "train": keep}, sort_keys=True)


def _done(row: dict, train_cfg: dict) -> bool:
    """Has training reached its end at this epoch's row (epoch, train_loss)?
    ce_target: the training CE is below the target; budget: max_epochs epochs are done."""
    if train_cfg["stopping"] == "budget":
        return row["epoch"] >= train_cfg["max_epochs"] and math.isfinite(row["train_loss"])
    return row["train_loss"] < train_cfg["ce_target"]


def _read_checkpoint(checkpoint: Path, log: Callable[[str], None]) -> dict | None:
    """The checkpoint's content, or None if there is none. One that cannot be read (a
    truncated or corrupt file) is moved aside to ``<name>.corrupt`` with a warning, so
    the cell trains from scratch instead of failing on every rerun."""
    if not checkpoint.exists():
        return None
    try:
        state = load_torch(checkpoint)
        if not isinstance(state, dict):
            raise TypeError(f"a {type(state).__name__}, not a checkpoint")
        return state
    except Exception as exc:  # torch.load raises many types on a damaged file
        aside = checkpoint.with_name(checkpoint.name + ".corrupt")
        os.replace(checkpoint, aside)
        log(f"WARNING: cannot read the checkpoint {checkpoint} ({type(exc).__name__}: {exc}); "
            f"moved it to {aside} and training this cell from scratch")
        return None


def train_model(
    hp: dict,
    model_cfg: dict,
    train_cfg: dict,
    split: dict,
    checkpoint: str | Path,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train one cell to the CE target (or the epoch cap), resuming from ``checkpoint``."""
    numerics = configure_numerics(train_cfg["deterministic"], train_cfg["fp32_precision"])
    device = resolve_device(train_cfg["device"])
    data = DeviceData.from_split(split, device)
    checkpoint = Path(checkpoint)
    fingerprint = _fingerprint(hp, model_cfg, train_cfg)

    torch.manual_seed(hp["seed"])
    model = model_for(hp, model_cfg, data).to(device)
    init_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    optimizer = make_optimizer(hp["optimizer"], model.parameters(), hp["lr"], hp["weight_decay"])
    generator = torch.Generator().manual_seed(hp["seed"])
    epoch, step, elapsed, curve = 0, 0, 0.0, []
    steps_to = {str(t): None for t in CE_MILESTONES}
    resumed_from = None

    state = _read_checkpoint(checkpoint, log)
    if state is not None:
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            if device.type == "cuda" and state.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(state["cuda_rng"], device)
            init_state = state["init_model"]
            epoch, step, elapsed = state["epoch"], state["step"], state["elapsed"]
            curve, steps_to = state["curve"], state["steps_to"]
            resumed_from = epoch
            log(f"resumed from {checkpoint} at epoch {epoch} (step {step})")
        else:
            log(f"ignoring {checkpoint}: it belongs to other settings")

    n = len(data.y_train)
    batch_size = hp["batch_size"]
    pad = train_cfg["augment_pad"]
    check_every_step = checks_loss_every_step(device)
    converged = bool(curve) and _done(curve[-1], train_cfg)
    diverged = bool(curve) and not math.isfinite(curve[-1]["train_loss"])
    started = time.perf_counter() - elapsed
    last_checkpoint = time.perf_counter()
    log(f"training {model_cfg['arch']} {hp} on {device} ({sum(p.numel() for p in model.parameters())} parameters)")

    while not (converged or diverged) and epoch < train_cfg["max_epochs"]:
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        if hp["augment"]:
            shifts, flips = epoch_augment_draws(n, batch_size, pad, train_cfg["augment_flip"], generator, device)
        nonfinite = torch.zeros((), dtype=torch.bool, device=device)
        for start in range(0, n, batch_size):
            batch = slice(start, start + batch_size)
            idx = order[batch]
            if hp["augment"]:  # crop and flip the uint8 images (zero padding), then normalise
                draws = (d[..., batch] if d is not None else None for d in (shifts, flips))
                x = data.normalize(apply_augment(data.x_train[idx], pad, *draws))
            else:
                x = data.normalized("train")[idx]
            loss = F.cross_entropy(model(x), data.y_train[idx])
            if check_every_step:
                if not math.isfinite(loss.item()):  # 20x cheaper than torch.isfinite on a CPU
                    diverged = True
                    break
            else:
                nonfinite |= ~torch.isfinite(loss)  # read once, at the end of the epoch
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        diverged = diverged or bool(nonfinite)
        epoch += 1
        train_loss, train_acc = evaluate(model, data, "train", train_cfg["eval_batch_size"])
        test_loss, test_acc = evaluate(model, data, "test", train_cfg["eval_batch_size"])
        diverged = diverged or not math.isfinite(train_loss)
        for t in CE_MILESTONES:
            if steps_to[str(t)] is None and train_loss < t:
                steps_to[str(t)] = step
        row = dict(epoch=epoch, step=step, train_loss=train_loss, train_acc=train_acc,
                   test_loss=test_loss, test_acc=test_acc, wall_time_s=time.perf_counter() - started)
        curve.append(row)
        converged = not diverged and _done(row, train_cfg)
        log(
            f"epoch {epoch:4d}/{train_cfg['max_epochs']} step {step:7d}  train CE {train_loss:.4f} "
            f"acc {train_acc:.4f}  test CE {test_loss:.4f} acc {test_acc:.4f}  ({row['wall_time_s']:.1f} s)"
        )
        finished = converged or diverged or epoch >= train_cfg["max_epochs"]
        # A finished cell is checkpointed too: a job that trains several cells and is
        # killed later finds it there and does not train it again.
        # Checkpoints are spaced in time too: each costs a few milliseconds, a real share
        # of a short epoch, and a kill loses at most the interval.
        due = (epoch % train_cfg["checkpoint_every"] == 0
               and time.perf_counter() - last_checkpoint >= train_cfg["checkpoint_min_interval_s"])
        if due or finished:
            last_checkpoint = time.perf_counter()
            save_torch(
                checkpoint,
                dict(
                    fingerprint=fingerprint, model=model.state_dict(), optimizer=optimizer.state_dict(),
                    generator=generator.get_state(), torch_rng=torch.get_rng_state(),
                    cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    init_model=init_state, epoch=epoch, step=step, elapsed=row["wall_time_s"],
                    curve=curve, steps_to=steps_to,
                ),
            )

    if diverged:
        log("training diverged (non-finite loss); the model is recorded with converged = false")
    elif not converged:
        log(f"epoch cap {train_cfg['max_epochs']} reached before train CE < {train_cfg['ce_target']}")
    elif train_cfg["stopping"] == "budget":
        log(f"trained the budget of {train_cfg['max_epochs']} epochs (train CE {curve[-1]['train_loss']:.4f})")
    last = curve[-1] if curve else {}
    summary = {
        "hyperparameters": hp,
        "model": model_cfg,
        "converged": bool(converged),
        "diverged": bool(diverged),
        "epochs": epoch,
        "steps": step,
        "steps_to_ce_0.1": steps_to["0.1"],
        "steps_to_ce_0.01": steps_to["0.01"],
        "ce_target": train_cfg["ce_target"],
        "stopping": train_cfg["stopping"],
        "train_loss": last.get("train_loss", float("nan")),
        "train_acc": last.get("train_acc", float("nan")),
        "test_loss": last.get("test_loss", float("nan")),
        "test_acc": last.get("test_acc", float("nan")),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "n_prunable": sum(w.numel() for w in prunable_weights(model).values()),  # |P|, the weights pruning acts on
        "wall_time_s": time.perf_counter() - started,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "torch_threads": torch.get_num_threads(),
        "numerics": numerics,
        # the machine and software of this run (of its last part, if it resumed elsewhere)
        "platform": describe(device),
        "resumed_from_epoch": resumed_from,
    }
    final_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    return TrainResult(init_state, final_state, summary, curve)


class ModelFileError(InputFileError):
    """A saved model (final.pt, init.pt) that cannot be read or does not fit its cell."""


def load_model(hp: dict, model_cfg: dict, data: DeviceData, state_path: str | Path) -> nn.Module:
    """Rebuild a cell's model on the data's device and load a saved state_dict (eval
    mode). A file that cannot be read or loaded raises ModelFileError naming it and
    saying how to retrain the cell."""
    device = data.x_train.device
    model = model_for(hp, model_cfg, data).to(device)
    try:
        model.load_state_dict(load_torch(state_path, map_location=device))
    except Exception as exc:  # torch.load and load_state_dict raise many types
        folder = Path(state_path).parent
        raise ModelFileError(
            f"{state_path}: cannot load this model ({type(exc).__name__}: {exc}). The file is damaged or belongs "
            f"to other settings. To retrain the cell, delete its folder {folder} (init.pt, final.pt, train.json, "
            "curve.csv) and rerun the workflow."
        ) from exc
    return model.eval()
