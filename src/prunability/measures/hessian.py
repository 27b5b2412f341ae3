"""Curvature: effective dimensionality (Maddox et al. 2020) and the
largest Hessian eigenvalue.

H is the Hessian of the mean training cross-entropy (eval mode, no augmentation)
with respect to every trainable parameter of the trained model (weights, biases
and BN affine parameters, no folding). Its top ``top_k`` eigenvalues come from
ARPACK's Lanczos (``scipy.sparse.linalg.eigsh``) on exact Hessian-vector products
(double backward, batched over the training set), started from a seeded vector.

    N_eff(H, z) = sum_{i <= k} lambda_i / (lambda_i + z)

over the top-k eigenvalues, negative ones clipped to 0 (they carry no
"effective" direction and would make a term negative or singular). Maddox et al.
sum batch-mean Hessians over minibatches, a multiple of our mean Hessian: z is
relative to the *mean* loss here.
"""

from __future__ import annotations

import copy
from functools import cached_property
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn

from . import register, register_family

# What the workflow gives this family's jobs (prunability.families).
FAMILY = {"name": "hessian", "cost": "quick", "cluster_group": "train_and_quick_measures", "inputs": {}, "order": 3,
          "roles": []}


def hessian_vector_product(model: nn.Module, data, batch_size: int, max_examples: int | None = None) -> tuple[Callable, int]:
    """(hvp, n): hvp(v) = H v for the mean training cross-entropy (eval mode), v a flat float64 array."""
    model = copy.deepcopy(model).eval()  # a copy: the caller's model keeps its mode
    params = [p for p in model.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    n = len(data.y_train) if max_examples is None else min(max_examples, len(data.y_train))

    def hvp(v: np.ndarray) -> np.ndarray:
        vec = torch.as_tensor(np.asarray(v, dtype=np.float64).ravel(), device=params[0].device, dtype=params[0].dtype)
        pieces = list(torch.split(vec, [p.numel() for p in params]))
        out = torch.zeros(n_params, dtype=torch.float64, device=params[0].device)
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            x = data.normalized("train")[start:stop]
            loss = F.cross_entropy(model(x), data.y_train[start:stop], reduction="sum") / n
            grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((g * u.view_as(g)).sum() for g, u in zip(grads, pieces))
            hv = torch.autograd.grad(dot, params)
            out += torch.cat([h.flatten() for h in hv]).double()
        return out.cpu().numpy()

    return hvp, n_params


def top_eigenvalues(hvp: Callable, n_params: int, k: int, seed: int, tol: float) -> np.ndarray:
    """The k algebraically largest eigenvalues of the symmetric operator ``hvp``, descending."""
    if not 0 < k < n_params:
        raise ValueError(f"top_k must lie in [1, {n_params - 1}] for {n_params} parameters, got {k}")
    operator = LinearOperator((n_params, n_params), matvec=hvp, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n_params)
    values = eigsh(operator, k=k, which="LA", v0=v0, tol=tol, return_eigenvectors=False)
    return np.sort(values)[::-1]


def effective_dimensionality(eigenvalues: np.ndarray, z: float) -> float:
    """sum_i lambda_i / (lambda_i + z), negative eigenvalues clipped to 0."""
    lam = np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None)
    return float(np.sum(lam / (lam + z)))


@register_family(FAMILY["name"])
class HessianContext:
    def __init__(self, model, init_model, data, settings, log, summary):
        self.model, self.data, self.settings, self.log = model, data, settings, log

    @cached_property
    def eigenvalues(self) -> np.ndarray:
        s = self.settings
        hvp, n_params = hessian_vector_product(self.model, self.data, s["eval_batch_size"], s["max_examples"])
        calls = 0

        def counted(v):
            nonlocal calls
            calls += 1
            return hvp(v)

        values = top_eigenvalues(counted, n_params, s["top_k"], s["seed"], s["tol"])
        self.log(f"top {len(values)} Hessian eigenvalues from {calls} Hessian-vector products: {np.array2string(values, precision=4)}")
        return values

    def details(self) -> dict:
        return {"eigenvalues": self.eigenvalues.tolist()}


@register("hessian", "effective_dimensionality", orientation=+1)
def effective_dim(ctx: HessianContext) -> float:
    """N_eff = sum_i lambda_i / (lambda_i + z) over the top-k eigenvalues of the training-loss Hessian (Maddox et al.)."""
    return effective_dimensionality(ctx.eigenvalues, ctx.settings["z"])


@register("hessian", "hessian_top_eigenvalue", orientation=+1)
def hessian_top_eigenvalue(ctx: HessianContext) -> float:
    """lambda_max of the training-loss Hessian: the sharpest curvature."""
    return float(ctx.eigenvalues[0])
