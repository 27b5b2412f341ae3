"""Tests for ``prunability.train``: the stopping rule, milestones, divergence,
determinism, resume from a checkpoint, augmentation, evaluation and optimizers.

Training runs use a few hundred digits images and tiny models (an MLP with 32
hidden units, a NiN with 4 channels) on one CPU thread; the whole file takes a
few seconds.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from prunability import train as train_mod
from prunability.data import digits_split, subsample
from prunability.io import load_torch
from prunability.train import (
    DeviceData,
    apply_augment,
    augment,
    augment_draws,
    epoch_augment_draws,
    evaluate,
    load_model,
    make_optimizer,
    train_model,
)

N_TRAIN, N_TEST = 250, 100  # 250 / 64 -> 4 batches per epoch, the last one partial (58 images)

HP = dict(depth=1, width=1, batchnorm=True, dropout=0.0, lr=0.01, batch_size=64, weight_decay=0.0,
          optimizer="adam", augment=False, seed=0)
TRAIN_CFG = dict(ce_target=0.01, max_epochs=3, eval_batch_size=1024, checkpoint_every=1, checkpoint_min_interval_s=0, device="cpu",
                 deterministic=True, fp32_precision="ieee", augment_pad=1, augment_flip=False, stopping="ce_target")
NIN = {"arch": "nin", "base_width": 4, "head_relu": False}
MLP = {"arch": "mlp", "base_width": 32, "head_relu": False}
# An infinite step makes the weights non-finite at the first update on every machine;
# a merely huge one (1e12) leaves a BatchNorm network's loss finite on some CPUs, since
# BatchNorm undoes the weights' scale.
DIVERGING_LR = math.inf


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def split() -> dict:
    return subsample(digits_split(0.3, 0), N_TRAIN, N_TEST, 0)


def run(split, tmp_path, name="ckpt.pt", model=MLP, log=None, **overrides):
    """train_model with HP / TRAIN_CFG overridden by ``overrides`` (keys of either)."""
    hp = {**HP, **{k: v for k, v in overrides.items() if k in HP}}
    cfg = {**TRAIN_CFG, **{k: v for k, v in overrides.items() if k in TRAIN_CFG}}
    assert set(overrides) <= set(HP) | set(TRAIN_CFG), overrides
    lines: list[str] = []
    result = train_model(hp, model, cfg, split, tmp_path / name, log=log or lines.append)
    result.lines = lines
    return result


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


def curve_without_time(curve: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "wall_time_s"} for row in curve]


# --------------------------------------------------------------------------- stopping rule


def test_stops_at_first_epoch_below_ce_target(split, tmp_path):
    target = 0.5  # the MLP needs a few epochs to get there (train CE ~2.3 at the start)
    r = run(split, tmp_path, ce_target=target, max_epochs=40)
    s = r.summary
    assert s["converged"] is True and s["diverged"] is False
    assert len(r.curve) >= 2, "target reached in the first epoch: the 'earlier rows' check would be vacuous"
    assert r.curve[-1]["train_loss"] < target
    assert all(row["train_loss"] >= target for row in r.curve[:-1])
    assert s["epochs"] == len(r.curve) == r.curve[-1]["epoch"]
    assert [row["epoch"] for row in r.curve] == list(range(1, len(r.curve) + 1))
    assert s["train_loss"] == r.curve[-1]["train_loss"] and s["test_acc"] == r.curve[-1]["test_acc"]
    assert s["resumed_from_epoch"] is None
    assert s["ce_target"] == target
    assert s["n_parameters"] == 64 * 32 + 32 + 2 * 32 + 32 * 10 + 10  # Linear + BN + Linear
    assert s["n_prunable"] == 64 * 32 + 32 * 10  # |P|: the two Linear weights


def test_budget_trains_every_epoch_past_the_ce_target(split, tmp_path):
    # The same run as the CE-stopped one above, continued: with stopping "budget" the
    # model trains all 12 epochs although CE 0.5 is reached earlier, and it counts as
    # converged (it completed its budget); its first epochs equal the CE-stopped run's.
    stopped = run(split, tmp_path, "H.pt", ce_target=0.5, max_epochs=12)
    budget = run(split, tmp_path, "I.pt", ce_target=0.5, max_epochs=12, stopping="budget")
    assert stopped.summary["epochs"] < 12
    assert budget.summary["epochs"] == len(budget.curve) == 12
    assert budget.summary["converged"] is True and budget.summary["stopping"] == "budget"
    assert budget.curve[: len(stopped.curve)] == [dict(r, wall_time_s=b["wall_time_s"]) for r, b in zip(stopped.curve, budget.curve)]
    # training on past the target: only the budget run gets below CE 0.1
    assert stopped.summary["steps_to_ce_0.1"] is None and budget.summary["steps_to_ce_0.1"] > 0
    assert any("trained the budget of 12 epochs" in line for line in budget.lines)


def test_budget_of_a_diverging_model_is_not_converged(split, tmp_path):
    r = run(split, tmp_path, model=NIN, optimizer="sgd", lr=DIVERGING_LR, max_epochs=3, stopping="budget")
    assert r.summary["diverged"] is True and r.summary["converged"] is False


def test_epoch_cap_without_convergence(split, tmp_path):
    r = run(split, tmp_path, model=NIN, ce_target=1e-9, max_epochs=2)
    assert r.summary["converged"] is False and r.summary["diverged"] is False
    assert r.summary["epochs"] == 2 == len(r.curve)
    assert any("epoch cap 2 reached" in line for line in r.lines)


def test_summary_losses_match_an_evaluation_of_the_final_weights(split, tmp_path):
    r = run(split, tmp_path, model=NIN, ce_target=1e-9, max_epochs=2)
    data = DeviceData.from_split(split, "cpu")
    model = train_mod.model_for(r.summary["hyperparameters"], NIN, data)
    model.load_state_dict(r.final_state)
    for part in ("train", "test"):
        loss, acc = evaluate(model, data, part)
        assert loss == pytest.approx(r.summary[f"{part}_loss"], rel=1e-6)
        assert acc == r.summary[f"{part}_acc"]


# --------------------------------------------------------------------------- milestones and steps


def test_steps_to_ce_milestones_and_step_count(split, tmp_path):
    r = run(split, tmp_path, ce_target=0.005, max_epochs=80)
    s = r.summary
    per_epoch = math.ceil(N_TRAIN / HP["batch_size"])  # 4
    assert s["steps"] == s["epochs"] * per_epoch
    assert [row["step"] for row in r.curve] == [e * per_epoch for e in range(1, len(r.curve) + 1)]
    for t in (0.1, 0.01):
        below = [row for row in r.curve if row["train_loss"] < t]
        assert below, f"CE {t} never reached: choose a longer run"
        assert s[f"steps_to_ce_{t}"] == below[0]["step"]
    # the milestones are distinct events here (not the first epoch), so the test can fail
    assert s["steps_to_ce_0.1"] > per_epoch
    assert s["steps_to_ce_0.01"] > s["steps_to_ce_0.1"]


def test_steps_to_ce_none_when_never_reached(split, tmp_path):
    r = run(split, tmp_path, model=NIN, ce_target=1e-9, max_epochs=2, batch_size=100)
    assert all(row["train_loss"] >= 0.1 for row in r.curve)
    assert r.summary["steps_to_ce_0.1"] is None and r.summary["steps_to_ce_0.01"] is None
    assert r.summary["steps"] == 2 * math.ceil(N_TRAIN / 100)  # 2 x 3


# --------------------------------------------------------------------------- divergence


@pytest.mark.parametrize("batchnorm", [True, False])
def test_divergence_is_recorded_not_raised(split, tmp_path, batchnorm):
    r = run(split, tmp_path, model=NIN, optimizer="sgd", lr=DIVERGING_LR, batchnorm=batchnorm, ce_target=0.01, max_epochs=3)
    s = r.summary
    assert s["diverged"] is True and s["converged"] is False
    assert s["epochs"] == 1 == len(r.curve)  # stops at once
    assert not math.isfinite(s["train_loss"])
    assert s["steps"] <= math.ceil(N_TRAIN / 64)
    assert any("diverged" in line for line in r.lines)
    # the finished (diverged) cell is checkpointed like a converged one: a rerun returns it
    again = run(split, tmp_path, model=NIN, optimizer="sgd", lr=DIVERGING_LR, batchnorm=batchnorm, ce_target=0.01, max_epochs=3)
    assert again.summary["resumed_from_epoch"] == 1 and again.summary["diverged"] is True


def test_the_gpu_divergence_check_catches_a_diverging_model_at_the_end_of_its_epoch(split, tmp_path, monkeypatch):
    """On a GPU the loss is not read at every step (the host would wait for the device):
    a flag on the device is read once per epoch. Run that path on the CPU."""
    per_step = run(split, tmp_path, name="a.pt", model=NIN, optimizer="sgd", lr=DIVERGING_LR, batchnorm=False, max_epochs=3)
    monkeypatch.setattr(train_mod, "checks_loss_every_step", lambda device: False)
    per_epoch = run(split, tmp_path, name="b.pt", model=NIN, optimizer="sgd", lr=DIVERGING_LR, batchnorm=False, max_epochs=3)
    for r in (per_step, per_epoch):
        assert r.summary["diverged"] is True and r.summary["converged"] is False and r.summary["epochs"] == 1
    assert per_step.summary["steps"] < math.ceil(N_TRAIN / 64) == per_epoch.summary["steps"]  # the whole epoch ran


@pytest.mark.parametrize("augmented", [False, True])
def test_the_gpu_divergence_check_changes_nothing_in_a_normal_run(split, tmp_path, monkeypatch, augmented):
    per_step = run(split, tmp_path, name="a.pt", model=NIN, augment=augmented, augment_flip=True, max_epochs=2)
    monkeypatch.setattr(train_mod, "checks_loss_every_step", lambda device: False)
    per_epoch = run(split, tmp_path, name="b.pt", model=NIN, augment=augmented, augment_flip=True, max_epochs=2)
    assert_same_state(per_step.final_state, per_epoch.final_state)
    assert curve_without_time(per_step.curve) == curve_without_time(per_epoch.curve)


def test_only_the_cpu_reads_the_loss_at_every_step():
    assert train_mod.checks_loss_every_step(torch.device("cpu"))
    assert not train_mod.checks_loss_every_step(torch.device("cuda", 0))
    assert not train_mod.checks_loss_every_step(torch.device("mps"))


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_weights_other_seed_other_weights(split, tmp_path):
    kw = dict(model=NIN, ce_target=1e-9, max_epochs=2, dropout=0.2, augment=True)
    a = run(split, tmp_path, "a.pt", **kw)
    b = run(split, tmp_path, "b.pt", **kw)
    c = run(split, tmp_path, "c.pt", seed=1, **kw)
    assert_same_state(a.final_state, b.final_state)
    assert_same_state(a.init_state, b.init_state)
    assert curve_without_time(a.curve) == curve_without_time(b.curve)
    assert differs(a.init_state, c.init_state)
    assert differs(a.final_state, c.final_state)
    assert differs(a.init_state, a.final_state)


# --------------------------------------------------------------------------- resume


EPOCH_LINE = re.compile(r"epoch +\d+/")


class Interrupt(Exception):
    pass


def interrupt_at(epoch: int, lines: list[str]):
    """A log callback that kills training when epoch ``epoch`` is logged."""

    def log(line: str) -> None:
        lines.append(line)
        if line.startswith(f"epoch {epoch:4d}/"):
            raise Interrupt(line)

    return log


RESUME_KW = dict(model=NIN, ce_target=1e-9, max_epochs=5, dropout=0.3, augment=True, augment_pad=1, augment_flip=True)


@pytest.fixture(scope="module")
def uninterrupted(split, tmp_path_factory):
    torch.set_num_threads(1)
    return run(split, tmp_path_factory.mktemp("resume"), "A.pt", **RESUME_KW)


def interrupted_then_resumed(split, tmp_path, stop_at: int, checkpoint_every: int = 1, patch_state=None):
    """Interrupt at the log line of epoch ``stop_at`` (the checkpoint of that epoch is
    written only after its log line, so the newest checkpoint is of an earlier epoch),
    then rerun with the same checkpoint. ``patch_state`` may alter the loaded checkpoint."""
    lines: list[str] = []
    with pytest.raises(Interrupt):
        run(split, tmp_path, "B.pt", log=interrupt_at(stop_at, lines), checkpoint_every=checkpoint_every, **RESUME_KW)
    assert any(line.startswith("epoch    1/") for line in lines)
    saved = load_torch(tmp_path / "B.pt")
    if patch_state is not None:
        real_load = train_mod.load_torch

        def patched(path, *a, **k):
            state = real_load(path, *a, **k)
            patch_state(state)
            return state

        mp = pytest.MonkeyPatch()
        mp.setattr(train_mod, "load_torch", patched)
        try:
            resumed = run(split, tmp_path, "B.pt", checkpoint_every=checkpoint_every, **RESUME_KW)
        finally:
            mp.undo()
    else:
        resumed = run(split, tmp_path, "B.pt", checkpoint_every=checkpoint_every, **RESUME_KW)
    return saved, resumed


@pytest.mark.parametrize("stop_at, checkpoint_every, last_checkpoint", [(2, 1, 1), (4, 1, 3), (4, 2, 2)])
def test_resume_gives_the_uninterrupted_result(split, tmp_path, uninterrupted, stop_at, checkpoint_every, last_checkpoint):
    saved, resumed = interrupted_then_resumed(split, tmp_path, stop_at, checkpoint_every)
    assert saved["epoch"] == last_checkpoint >= 1
    assert resumed.summary["resumed_from_epoch"] == last_checkpoint
    assert any(line.startswith("resumed from") for line in resumed.lines)
    # only the epochs after the checkpoint were trained again
    assert [line[:11] for line in resumed.lines if EPOCH_LINE.match(line)] == [
        f"epoch {e:4d}/" for e in range(last_checkpoint + 1, 6)
    ]
    assert resumed.summary["epochs"] == 5
    assert_same_state(resumed.final_state, uninterrupted.final_state)
    assert_same_state(resumed.init_state, uninterrupted.init_state)
    assert curve_without_time(resumed.curve) == curve_without_time(uninterrupted.curve)
    for key in ("steps", "steps_to_ce_0.1", "steps_to_ce_0.01", "train_loss", "test_acc", "converged"):
        assert resumed.summary[key] == uninterrupted.summary[key], key


def _reseed_global_rng(state):
    state["torch_rng"] = torch.Generator().manual_seed(12345).get_state()


def _reseed_generator(state):
    state["generator"] = torch.Generator().manual_seed(HP["seed"]).get_state()


@pytest.mark.parametrize("patch_state", [_reseed_global_rng, _reseed_generator])
def test_resume_check_detects_unrestored_rng(split, tmp_path, uninterrupted, patch_state):
    """Negative control: were the global RNG (dropout) or the data-order / augmentation
    generator not restored, the resumed weights would differ, so the test above is sharp."""
    _, resumed = interrupted_then_resumed(split, tmp_path, 2, patch_state=patch_state)
    assert resumed.summary["resumed_from_epoch"] == 1
    assert differs(resumed.final_state, uninterrupted.final_state)


def test_finished_checkpoint_resumes_without_training(split, tmp_path, uninterrupted):
    first = run(split, tmp_path, "C.pt", **RESUME_KW)
    again = run(split, tmp_path, "C.pt", **RESUME_KW)
    assert again.summary["resumed_from_epoch"] == 5
    assert not any(EPOCH_LINE.match(line) for line in again.lines)
    assert_same_state(again.final_state, first.final_state)
    assert_same_state(again.final_state, uninterrupted.final_state)


def test_converged_cell_is_checkpointed_and_not_trained_again(split, tmp_path):
    # A job training several cells deletes their checkpoints only when all are done, so
    # after a kill the cells it had finished come back from their checkpoints.
    first = run(split, tmp_path, "G.pt", ce_target=0.5, max_epochs=40)
    assert first.summary["converged"] and first.summary["epochs"] < 40
    assert load_torch(tmp_path / "G.pt")["epoch"] == first.summary["epochs"]
    again = run(split, tmp_path, "G.pt", ce_target=0.5, max_epochs=40)
    assert again.summary["resumed_from_epoch"] == first.summary["epochs"] == again.summary["epochs"]
    assert not any(EPOCH_LINE.match(line) for line in again.lines)
    assert_same_state(again.final_state, first.final_state)
    assert again.curve == first.curve


def test_checkpoint_of_other_settings_is_ignored(split, tmp_path):
    kw = dict(model=NIN, ce_target=1e-9, max_epochs=2)
    run(split, tmp_path, "D.pt", **kw)  # leaves a checkpoint of epoch 2, lr 0.01
    assert load_torch(tmp_path / "D.pt")["epoch"] == 2
    other = run(split, tmp_path, "D.pt", lr=0.02, **kw)
    fresh = run(split, tmp_path, "E.pt", lr=0.02, **kw)
    assert any("ignoring" in line for line in other.lines)
    assert other.summary["resumed_from_epoch"] is None
    assert other.summary["epochs"] == 2 and len(other.curve) == 2
    assert_same_state(other.final_state, fresh.final_state)


def test_checkpoints_are_spaced_in_time(split, tmp_path, monkeypatch):
    # With an interval longer than the run, only the finished cell is checkpointed; the
    # weights are the same as with a checkpoint every epoch.
    saved = []
    real_save = train_mod.save_torch
    monkeypatch.setattr(train_mod, "save_torch", lambda path, obj: (saved.append(obj["epoch"]), real_save(path, obj)))
    kw = dict(model=NIN, ce_target=1e-9, max_epochs=3)
    spaced = run(split, tmp_path, "S.pt", checkpoint_min_interval_s=3600, **kw)
    assert saved == [3]
    saved.clear()
    every = run(split, tmp_path, "T.pt", **kw)
    assert saved == [1, 2, 3]
    assert_same_state(spaced.final_state, every.final_state)


def test_checkpoint_every_does_not_invalidate_a_checkpoint(split, tmp_path):
    kw = dict(model=NIN, ce_target=1e-9)
    run(split, tmp_path, "F.pt", max_epochs=2, **kw)
    # max_epochs is part of the settings, so keep it; change only checkpoint_every
    again = run(split, tmp_path, "F.pt", max_epochs=2, checkpoint_every=5, **kw)
    assert again.summary["resumed_from_epoch"] == 2


@pytest.mark.parametrize("damage", [b"", b"not a checkpoint", "truncated", "a tensor"])
def test_a_damaged_checkpoint_is_set_aside_and_the_cell_trains_from_scratch(split, tmp_path, damage):
    kw = dict(model=NIN, ce_target=1e-9, max_epochs=2)
    fresh = run(split, tmp_path, "fresh.pt", **kw)
    checkpoint = tmp_path / "H.pt"
    if damage == "truncated":
        torch.save(fresh.final_state, checkpoint)
        checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    elif damage == "a tensor":
        torch.save(torch.zeros(3), checkpoint)
    else:
        checkpoint.write_bytes(damage)
    original = checkpoint.read_bytes()
    again = run(split, tmp_path, "H.pt", **kw)
    warning = [line for line in again.lines if line.startswith("WARNING: cannot read the checkpoint")]
    assert len(warning) == 1 and "H.pt.corrupt" in warning[0] and "from scratch" in warning[0]
    assert (tmp_path / "H.pt.corrupt").read_bytes() == original  # kept for a look, not deleted
    assert again.summary["resumed_from_epoch"] is None
    assert_same_state(again.final_state, fresh.final_state)


def test_a_damaged_model_file_names_itself_and_the_way_to_retrain(split, tmp_path):
    r = run(split, tmp_path, model=NIN, ce_target=1e-9, max_epochs=1)
    cell = tmp_path / "models" / "depth~2"
    cell.mkdir(parents=True)
    (cell / "final.pt").write_bytes(b"\x00garbage")
    data = DeviceData.from_split(split, "cpu")
    with pytest.raises(train_mod.ModelFileError) as info:
        load_model(r.summary["hyperparameters"], NIN, data, cell / "final.pt")
    message = str(info.value)
    assert message.startswith(f"{cell / 'final.pt'}: cannot load this model")
    assert f"delete its folder {cell}" in message
    # a readable file of another shape: the same error
    torch.save({"weight": torch.zeros(2)}, cell / "final.pt")
    with pytest.raises(train_mod.ModelFileError, match="belongs to other settings"):
        load_model(r.summary["hyperparameters"], NIN, data, cell / "final.pt")


def test_load_model_restores_saved_weights(split, tmp_path):
    r = run(split, tmp_path, model=NIN, ce_target=1e-9, max_epochs=1, dropout=0.2)
    torch.save(r.final_state, tmp_path / "model.pt")
    data = DeviceData.from_split(split, "cpu")
    model = load_model(r.summary["hyperparameters"], NIN, data, tmp_path / "model.pt")
    assert not model.training
    assert_same_state({k: v for k, v in model.state_dict().items()}, r.final_state)
    loss, acc = evaluate(model, data, "test")
    assert loss == pytest.approx(r.summary["test_loss"], rel=1e-6) and acc == r.summary["test_acc"]


# --------------------------------------------------------------------------- augment


def images(n=64, c=2, h=5, w=6, seed=0) -> torch.Tensor:
    """uint8 images with values 1..255 (so zero padding is recognisable), h != w."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 256, (n, c, h, w), generator=g, dtype=torch.int64).to(torch.uint8)


def gen(seed=0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_augment_identity_without_pad_and_flip():
    x = images()
    out = augment(x, 0, False, gen())
    assert out.dtype == x.dtype and torch.equal(out, x)


def test_augment_flip_only():
    x = images()
    out = augment(x, 0, True, gen())
    assert out.shape == x.shape and out.dtype == x.dtype
    flipped = x.flip(3)
    same = [torch.equal(o, i) for o, i in zip(out, x)]
    mirror = [torch.equal(o, f) for o, f in zip(out, flipped)]
    assert all(s or m for s, m in zip(same, mirror))
    # with 64 fair coins both outcomes occur (chance of failing ~1e-19 for a fixed seed: never)
    assert sum(mirror) > 0 and sum(same) > 0
    assert not torch.equal(x[0], flipped[0])  # images are not symmetric, so "mirror" means flipped


def windows(img: torch.Tensor, pad: int, flip: bool):
    """Every (dy, dx, flipped) window of the zero-padded image, by brute force."""
    c, h, w = img.shape
    padded = torch.zeros(c, h + 2 * pad, w + 2 * pad, dtype=img.dtype)
    padded[:, pad : pad + h, pad : pad + w] = img
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            win = padded[:, dy : dy + h, dx : dx + w]
            yield (dy, dx, False), win
            if flip:
                yield (dy, dx, True), win.flip(2)


@pytest.mark.parametrize("pad, flip", [(1, False), (2, False), (2, True)])
def test_augment_pad_gives_shifted_windows(pad, flip):
    x = images(n=64)
    out = augment(x, pad, flip, gen(3))
    assert out.shape == x.shape and out.dtype == x.dtype
    used = set()
    for o, i in zip(out, x):
        matches = [key for key, win in windows(i, pad, flip) if torch.equal(o, win)]
        assert matches, "output is not a shifted window of the padded input"
        used.update(matches)
    shifts = {(dy, dx) for dy, dx, _ in used}
    assert len(shifts) > 1  # really random crops, not always the same one
    assert any(dy != pad or dx != pad for dy, dx in shifts)  # some non-centred crops (with zeros)
    if flip:
        assert {f for _, _, f in used} == {True, False}


def test_augment_same_generator_seed_same_output():
    x = images()
    a = augment(x, 2, True, gen(7))
    b = augment(x, 2, True, gen(7))
    c = augment(x, 2, True, gen(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_augment_uses_only_the_generator():
    x = images()
    g = gen(1)
    before = torch.get_rng_state()
    augment(x, 1, True, g)
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is untouched
    assert not torch.equal(g.get_state(), gen(1).get_state())  # the generator advanced


@pytest.mark.parametrize("n, batch_size, pad, flip", [(250, 64, 2, True), (250, 64, 0, True), (128, 64, 3, False), (10, 64, 1, True)])
def test_epoch_draws_are_the_per_batch_draws(n, batch_size, pad, flip):
    """One copy to the device per epoch, the numbers of a draw per batch."""
    g1, g2 = gen(5), gen(5)
    shifts, flips = epoch_augment_draws(n, batch_size, pad, flip, g1, "cpu")
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        s, f = augment_draws(b, pad, flip, g2)
        if pad:
            assert torch.equal(shifts[:, start : start + b], s) and s.shape == (2, b)
            assert 0 <= int(s.min()) and int(s.max()) <= 2 * pad
        else:
            assert shifts is None and s is None
        if flip:
            assert torch.equal(flips[start : start + b], f)
        else:
            assert flips is None and f is None
    assert torch.equal(g1.get_state(), g2.get_state())  # the generator is left where per-batch draws leave it


def test_augment_is_apply_augment_of_its_draws():
    x = images()
    shifts, flips = augment_draws(len(x), 2, True, gen(4))
    assert torch.equal(augment(x, 2, True, gen(4)), apply_augment(x, 2, shifts, flips))
    # a crop by hand: offsets (dy, dx) = shifts[:, i] pick rows dy.., cols dx.. of the padded image
    i = 0
    padded = F.pad(x[i : i + 1], (2, 2, 2, 2))[0]
    dy, dx = int(shifts[0, i]), int(shifts[1, i])
    window = padded[:, dy : dy + x.shape[2], dx : dx + x.shape[3]]
    expected = window.flip(2) if bool(flips[i]) else window
    assert torch.equal(apply_augment(x, 2, shifts, flips)[i], expected)


# --------------------------------------------------------------------------- evaluate


def tiny_split() -> dict:
    x = torch.tensor(
        [[[[0, 1], [2, 3]]], [[[4, 0], [1, 1]]], [[[9, 9], [0, 2]]], [[[3, 3], [3, 3]]], [[[7, 0], [0, 5]]]],
        dtype=torch.uint8,
    )
    y = torch.tensor([2, 1, 1, 0, 2])  # predictions are [2, 0, 1, 2, 2]: accuracy 3/5
    return dict(x_train=x, y_train=y, x_test=x[:3].clone(), y_test=torch.tensor([2, 2, 2]),  # accuracy 1/3
                mean=torch.tensor([2.0]), std=torch.tensor([4.0]), classes=["a", "b", "c"], source="hand")


class Tiny(nn.Module):
    """Dropout (p=0.9) before a linear layer: eval mode is required for the hand values."""

    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.9)
        self.lin = nn.Linear(4, 3)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, -1.0, 0.5, 0.0], [0.0, 2.0, -1.0, 1.0], [-0.5, 0.0, 0.0, 3.0]]))
            self.lin.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))

    def forward(self, x):
        return self.lin(self.drop(x.flatten(1)))


def hand_eval(model: Tiny, x: torch.Tensor, y: torch.Tensor, mean: float, std: float):
    z = (x.numpy().reshape(len(x), -1).astype(np.float64) - mean) / std
    w = model.lin.weight.detach().numpy().astype(np.float64)
    b = model.lin.bias.detach().numpy().astype(np.float64)
    logits = z @ w.T + b
    m = logits.max(1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(1, keepdims=True)))[:, 0]
    ce = lse - logits[np.arange(len(y)), y.numpy()]
    acc = (logits.argmax(1) == y.numpy()).mean()
    return ce.mean(), acc


@pytest.mark.parametrize("batch_size", [2, 1024])
@pytest.mark.parametrize("training", [True, False])
def test_evaluate_matches_hand_computation(batch_size, training):
    s = tiny_split()
    data = DeviceData.from_split(s, "cpu")
    model = Tiny().train(training)
    for part in ("train", "test"):
        x, y = s[f"x_{part}"], s[f"y_{part}"]
        expected_loss, expected_acc = hand_eval(model, x, y, 2.0, 4.0)
        loss, acc = evaluate(model, data, part, batch_size=batch_size)
        assert loss == pytest.approx(expected_loss, rel=1e-6)
        assert acc == pytest.approx(expected_acc)
        assert model.training is training  # mode restored
    # the hand values are not trivial: accuracies strictly between 0 and 1
    assert hand_eval(model, s["x_train"], s["y_train"], 2.0, 4.0)[1] == pytest.approx(3 / 5)
    assert hand_eval(model, s["x_test"], s["y_test"], 2.0, 4.0)[1] == pytest.approx(1 / 3)


def test_evaluate_sums_batches_like_python_floats_to_the_last_bit():
    """The device-side float64 sum of float32 batch sums is the sum of the batches'
    Python floats, in order, exactly (the value before it was summed on the device)."""
    s = tiny_split()
    data = DeviceData.from_split(s, "cpu")
    model = Tiny().eval()
    x, y = data.normalized("train"), s["y_train"]
    total, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(y), 2):
            logits = model(x[start : start + 2])
            total += F.cross_entropy(logits, y[start : start + 2], reduction="sum").item()
            correct += int((logits.argmax(1) == y[start : start + 2]).sum())
    assert evaluate(model, data, "train", batch_size=2) == (total / len(y), correct / len(y))


def test_device_data_normalizes_with_training_statistics():
    s = tiny_split()
    data = DeviceData.from_split(s, "cpu")
    out = data.normalize(s["x_train"][:1])
    assert torch.allclose(out, torch.tensor([[[[-0.5, -0.25], [0.0, 0.25]]]]))
    assert data.num_classes == 3 and data.in_channels == 1 and data.image_size == 2


# --------------------------------------------------------------------------- optimizers


def test_make_optimizer_variants():
    params = [nn.Parameter(torch.zeros(3))]
    sgd = make_optimizer("sgd", params, 0.1, 1e-4)
    mom = make_optimizer("momentum", params, 0.2, 0.0)
    adam = make_optimizer("adam", params, 0.003, 5e-4)
    assert type(sgd) is torch.optim.SGD and sgd.param_groups[0]["momentum"] == 0
    assert type(mom) is torch.optim.SGD and mom.param_groups[0]["momentum"] == 0.9
    assert type(adam) is torch.optim.Adam
    assert sgd.param_groups[0]["lr"] == 0.1 and sgd.param_groups[0]["weight_decay"] == 1e-4
    assert mom.param_groups[0]["lr"] == 0.2
    assert adam.param_groups[0]["lr"] == 0.003 and adam.param_groups[0]["weight_decay"] == 5e-4


def test_make_optimizer_unknown_name():
    with pytest.raises(ValueError, match="rmsprop"):
        make_optimizer("rmsprop", [nn.Parameter(torch.zeros(1))], 0.1, 0.0)


def test_sgd_step_matches_hand_update():
    p = nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = make_optimizer("sgd", [p], 0.5, 0.0)
    loss = (p**2).sum()  # gradient 2p
    loss.backward()
    opt.step()
    assert torch.allclose(p.detach(), torch.tensor([0.0, 0.0]))  # p - 0.5 * 2p


def test_resolve_device():
    assert train_mod.resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert train_mod.resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="cuda"):
            train_mod.resolve_device("cuda")


def test_cross_entropy_reference():
    """Sanity of the hand formula used above against torch (guards the helper itself)."""
    model = Tiny().eval()
    s = tiny_split()
    z = (s["x_train"].float() - 2.0) / 4.0
    ref = F.cross_entropy(model(z), s["y_train"]).item()
    assert hand_eval(model, s["x_train"], s["y_train"], 2.0, 4.0)[0] == pytest.approx(ref, rel=1e-6)


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"device is 'cuda' in the configuration, but torch .* finds no CUDA device"):
        train_mod.resolve_device("cuda")
    assert train_mod.resolve_device("auto") == torch.device("cpu")
