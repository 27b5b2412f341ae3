"""The measure registry.

A measure is one small function of a family *context* (the per-model quantities a
family shares: a pruning search, folded weights, a margin, ...), registered with

- its family (one Snakemake rule and one JSON per family and model),
- its orientation: +1 if a larger value predicts *worse* generalization (a larger
  gap), -1 if it predicts better; statistics multiply by it, so they never guess
  signs,
- the equation number in Jiang et al. 2020 where it has one.

Adding a measure is one decorated function (plus its test); the workflow picks it up.
Adding a family is one module here that declares its ``FAMILY`` (what the workflow
gives its jobs: ``prunability.families``) and registers its context class.
A measure registered with ``over=<settings key>`` is a template: one measure per value
v of that family setting (a list), named ``name.format(v)`` and computed as fn(ctx, v).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..io import InputFileError
from ..platform import describe


@dataclass(frozen=True)
class Measure:
    name: str
    family: str
    orientation: int
    equation: str | None
    description: str
    fn: Callable
    over: str | None = None  # a template over the values of this family setting

    def instances(self, settings: dict) -> list[tuple[str, Callable]]:
        """(name, fn(ctx)) of every concrete measure this entry stands for."""
        if self.over is None:
            return [(self.name, self.fn)]
        return [(self.name.format(v), (lambda ctx, v=v: self.fn(ctx, v))) for v in settings[self.over]]


MEASURES: dict[str, Measure] = {}
FAMILIES: dict[str, type] = {}


def register_family(name: str):
    """Register a family's context class:
    ``Context(model, init_model, data, settings, log, summary)``, with ``summary`` the
    model's train.json (steps to the CE milestones, hyperparameters, ...)."""

    def decorator(cls):
        if name in FAMILIES:
            raise ValueError(f"measure family {name!r} registered twice")
        FAMILIES[name] = cls
        return cls

    return decorator


def register(family: str, name: str, orientation: int = +1, equation: str | None = None, over: str | None = None):
    """Register ``fn(context) -> float`` as measure ``name`` of ``family`` (or, with
    ``over``, ``fn(context, v) -> float`` as the template ``name`` over settings[over])."""
    if orientation not in (-1, +1):
        raise ValueError("orientation must be +1 or -1")

    def decorator(fn):
        if name in MEASURES:
            raise ValueError(f"measure {name!r} registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        MEASURES[name] = Measure(name, family, orientation, equation, doc[0] if doc else "", fn, over)
        return fn

    return decorator


def measures_of(family: str) -> list[Measure]:
    return [m for m in MEASURES.values() if m.family == family]


def instances_of(family: str, settings: dict) -> list[tuple[str, Measure, Callable]]:
    """(name, measure, fn(ctx)) of every concrete measure of ``family`` under ``settings``."""
    return [(name, m, fn) for m in measures_of(family) for name, fn in m.instances(settings)]


def all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


# Errors of the run, not of the model: out of memory, the device or its driver, an input
# that cannot be read, an interrupt. Recorded as a NaN they would pass for a property of
# the model, and after a device-side assert the CUDA context is unusable for every later
# family and cell of the job; so the job fails instead, naming the cause, and Snakemake
# can retry it. Anything else a measure raises is a property of the model (a measure
# undefined for it): NaN, with the error recorded.
RUN_ERRORS = (MemoryError, OSError, torch.cuda.OutOfMemoryError, InputFileError) + (
    (torch.AcceleratorError,) if hasattr(torch, "AcceleratorError") else ()
)
# what CUDA, cuDNN, cuBLAS, cuSOLVER and NCCL failures say when torch raises them as a
# plain RuntimeError
DEVICE_ERROR_MARKERS = (
    "CUDA error", "CUDA driver", "CUDA out of memory", "cuDNN error", "CUDNN_STATUS_", "CUBLAS_STATUS_",
    "CUSOLVER_STATUS_", "cusolver error", "device-side assert", "NCCL error", "illegal memory access",
)


class RunError(RuntimeError):
    """A measure job stopped by an error of the run (see RUN_ERRORS); its cause is chained."""


def is_run_error(error: BaseException) -> bool:
    if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit
        return True
    if isinstance(error, RUN_ERRORS):
        return True
    return isinstance(error, RuntimeError) and any(marker in str(error) for marker in DEVICE_ERROR_MARKERS)


def compute_family(
    family: str,
    model: nn.Module,
    init_model: nn.Module,
    data,
    settings: dict,
    log: Callable[[str], None] = print,
    summary: dict | None = None,
) -> dict:
    """Every registered measure of ``family`` for one model, as a JSON-able record.

    A model with non-finite weights (diverged) gets NaN for every measure; a family
    that cannot be set up for the model, or a measure that raises, gets NaN with its
    error recorded, and the other measures go on. An error of the run (``is_run_error``:
    out of memory, a CUDA or driver error, an unreadable input, an interrupt) raises
    RunError naming the family, the measure and the cause instead.
    """
    if family not in FAMILIES:
        raise KeyError(f"unknown measure family {family!r}; known: {sorted(FAMILIES)}")
    started = time.perf_counter()
    measures = instances_of(family, settings)
    values = {name: float("nan") for name, _, _ in measures}
    errors, timings, details = {}, {}, {}

    def attempt(what: str, fn):
        try:
            return fn(), None
        except Exception as error:  # an interrupt is no Exception: it goes on up as it is
            if is_run_error(error):
                raise RunError(
                    f"{what}: {type(error).__name__}: {error}. This is an error of the run, not a property of the "
                    "model, so the job fails (Snakemake retries it where retries are set; docs/gpu.md)"
                ) from error
            trace = traceback.format_exc()
            log(f"{what} failed (recorded as NaN):\n{trace}")
            return None, trace

    context, error = None, None
    if not all_finite(model):
        error = "non-finite weights (diverged)"
        log(f"model has {error}: every measure is NaN")
    else:
        context, error = attempt(f"setting up the {family} family", lambda: FAMILIES[family](model, init_model, data, settings, log, summary or {}))
    if context is None:
        errors = {name: error for name, _, _ in measures}
    else:
        for name, _, fn in measures:
            t0 = time.perf_counter()
            value, error = attempt(f"{family} measure {name}", lambda: float(fn(context)))
            if error is None:
                values[name] = value
            else:
                errors[name] = error
            timings[name] = time.perf_counter() - t0
            log(f"{name} = {values[name]:.6g}  ({timings[name]:.2f} s)")
        if hasattr(context, "details"):
            details = attempt(f"details of the {family} family", context.details)[0] or {}
    return {
        "family": family,
        "values": values,
        "orientation": {name: m.orientation for name, m, _ in measures},
        "equation": {name: m.equation for name, m, _ in measures},
        "description": {name: m.description for name, m, _ in measures},
        "errors": errors,
        "settings": settings,
        "details": details,
        "measure_time_s": timings,
        "wall_time_s": time.perf_counter() - started,
        # the machine and software the values were computed on (read only; it changes none)
        "platform": describe(next(model.parameters(), torch.empty(0)).device),
    }


def _import_families() -> None:
    """Import every module that declares a FAMILY (prunability.families), which registers
    its family and measures; each must register the family it declares."""
    from importlib import import_module

    from ..families import family_specs

    # in the modules' alphabetical order, which is the registry's (and the tables') order
    for name, spec in sorted(family_specs().items(), key=lambda item: item[1]["module"]):
        import_module(f"{__name__}.{spec['module']}")
        if name not in FAMILIES:
            raise RuntimeError(f"measures/{spec['module']}.py declares family {name!r} but registers no such family")
    if undeclared := set(FAMILIES) - set(family_specs()):
        raise RuntimeError(f"measure families registered without a FAMILY declaration: {sorted(undeclared)}")


_import_families()
