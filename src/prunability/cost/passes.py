"""The pass-count model: the images each stage pushes through a model, by what is done
with them (``KINDS``), from the settings and the outcomes of training; each count
names the code it comes from."""

from __future__ import annotations

from collections import Counter

from .assumptions import ASSUMED_ARPACK_RESTARTS, ASSUMED_BISECTION_STEPS, ASSUMED_SWEEP_STOP

# What an image costs depends on what is done with it (and at which batch size):
# step: a training step (forward, backward, optimizer) at the cell's batch size;
# grad: a gradient of a flatness ascent minibatch (measures.flatness.ascent_batch_size);
# forward: eval-mode forward (inference); folded: the same on the BatchNorm-folded model;
# hvp: a Hessian-vector product (forward, backward with graph, second backward).
KINDS = ("step", "grad", "forward", "folded", "hvp")


def sweep_evaluations(settings: dict, stop: float) -> int:
    """Loss evaluations of one pruning sweep that stops at kept fraction ``stop``: every
    point of 1, 1 - h, ... down to the first failure (pruning.search_prunability; the
    point alpha = 1 is the unpruned loss, already known). Points that share a kept count
    share an evaluation, which matters only for nets of a few thousand weights."""
    from ..pruning import sweep_alphas

    points = sweep_alphas(settings["resolution"], settings["alpha_min"])[1:]
    return min(sum(alpha >= stop for alpha in points) + 1, len(points))


def assumed_outcomes(config: dict, epochs: float | None = None) -> dict:
    """The counts the settings do not fix, as the model assumes them."""
    train = config["train"]
    measures = config["measures"]
    k = measures["hessian"]["top_k"]
    ncv = max(2 * k + 1, 20)  # scipy's eigsh default (the parameter count is larger)
    return {
        # ce_target stops at the first epoch below the target: the cap is an upper bound
        "epochs": train["max_epochs"] if epochs is None else epochs,
        "evaluations": {name: sweep_evaluations(measures["pruning"], stop) for name, stop in ASSUMED_SWEEP_STOP.items()},
        "bisection": {name: min(ASSUMED_BISECTION_STEPS, measures["flatness"]["search_iterations"])
                      for name in ("sigma", "sigma_mag", "alpha", "alpha_mag")},
        # the first factorization (ncv products, one more to check it), then each restart
        "hvps": ncv + 1 + ASSUMED_ARPACK_RESTARTS * (ncv - k),
    }


def images(config: dict, hp: dict, n: int, n_test: int, outcome: dict) -> dict[str, Counter]:
    """Images per model, by stage and kind (KINDS): the pass-count model. Each line names
    the code it counts."""
    m = config["measures"]
    bn = bool(hp["batchnorm"])
    stages: dict[str, Counter] = {}
    E = outcome["epochs"]
    # train.train_model: a step on every training image per epoch, then the stopping
    # rule's evaluate() of the training and the test set (unfolded model)
    stages["train_model"] = Counter(step=E * n, forward=E * (n + n_test))
    if "pruning" in m["families"]:
        s, ev = m["pruning"], outcome["evaluations"]
        searches = ev["magnitude"] + ev["layerwise"] + (ev["bn_folded"] if bn else 0) + s["random_seeds"] * ev["random"]
        stages["measure_pruning"] = Counter(folded=(
            n + n_test  # measures/pruning.py: the unpruned train loss (base) and test accuracy
            + searches * n  # _search: one evaluate() of the training set per sweep point
            + len(s["instability_fractions"]) * (n + n_test)))  # instability: one train, one test pass per fraction
    if "flatness" in m["families"]:
        s, b = m["flatness"], outcome["bisection"]
        kind = "folded" if s["fold_bn"] and bn else "forward"
        noise, ascent = b["sigma"] + b["sigma_mag"], b["alpha"] + b["alpha_mag"]
        batch = min(s["ascent_batch_size"], n)
        stages["measure_flatness"] = Counter({
            kind: n  # measures/flatness.py: base_acc
            + noise * s["mc_draws"] * n  # _noise_drop: one evaluate() per Monte Carlo draw per halving
            + ascent * s["restarts"] * (n + batch),  # _ascent_drop: evaluate() at the ascent's end, its last loss
            # worst_case_perturbation: ascent_steps gradients of a minibatch per restart per halving
            "grad": ascent * s["restarts"] * s["ascent_steps"] * batch})
    if "hessian" in m["families"]:
        s = m["hessian"]
        subset = n if s["max_examples"] is None else min(s["max_examples"], n)
        # measures/hessian.py: every ARPACK matvec is one Hessian-vector product over the subset
        stages["measure_hessian"] = Counter(hvp=outcome["hvps"] * subset)
    if "optimization" in m["families"]:
        batch = m["optimization"]["batch_size"] or hp["batch_size"]
        # measures/optimization.py gradient_noise: one gradient per full batch of one pass
        stages["measure_optimization"] = Counter(step=(n // batch) * batch)
    if "norms" in m["families"]:
        # measures/norms.py: the margins, one pass (plus the SVDs: seconds per model apart)
        stages["measure_norms"] = Counter({"folded" if m["norms"]["fold_bn"] and bn else "forward": n})
    if "prune_potential" in m["families"]:
        s = m["prune_potential"]
        from ..measures.prune_potential import prune_ratio_grid

        ratios = len(prune_ratio_grid(s["resolution"], s["prune_ratio_max"]))
        sets = len(s["corruptions"]) * len(s["severities"])
        noise_images = min(s["noise_images"], n_test)
        # measures/prune_potential.py: at every ratio the train, test and corrupted sets
        # (curves), and noise_samples draws per eps of noise_images test images (noise)
        stages["measure_prune_potential"] = Counter({"folded" if bn else "forward": ratios * (
            n + n_test * (1 + sets) + s["noise_samples"] * len(s["noise_eps"]) * noise_images)})
    return stages


def stability_images(config: dict, run: dict, n: int, n_test: int) -> Counter:
    """Images of one generalization-stability run (stability.train_run): a step per
    training image per epoch, evaluate() of train and test after each epoch, and one more
    test pass before each epoch's pruning (the union of the layers' pruning epochs)."""
    from ..stability import pruning_epochs

    section = config["generalization_stability"]
    epochs = section["train"]["epochs"]
    events = set()
    if run["kind"] != "baseline":
        for layer in section["layers"]:
            events.update(pruning_epochs(layer["start_epoch"], layer["end_epoch"], run["retrain_period"]))
    return Counter(step=epochs * n, forward=epochs * (n + n_test) + len(events) * n_test)
