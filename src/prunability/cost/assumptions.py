"""The cost model's assumptions: the outcomes of training that the settings do not fix
(where each pruning sweep stops, how many halvings a flatness search takes, how many
restarts ARPACK needs) and, without ``--calibrate`` or ``--from-run``, the throughput
and per-batch overhead of an assumed device."""

# Outcomes of training, not settings: the model's guesses, replaced by a run's counts with
# --from-run. Pruning: the kept fraction at which each sweep has failed every criterion
# (on the project's first 64-model NiN grid on digits, trained to CE 0.01, a relative
# tolerance of 0.1 let only 10-30% of the weights go and random masks failed at once;
# the magnitude sweep runs on to the loosest tolerance of rel_tol_sweep and to the
# accuracy criterion: where that is, is a guess).
ASSUMED_SWEEP_STOP = {"magnitude": 0.5, "layerwise": 0.8, "bn_folded": 0.8, "random": 0.99}
# Flatness: halvings per scale search (at most search_iterations; a guess).
ASSUMED_BISECTION_STEPS = 10
# Hessian: implicit restarts of ARPACK after its first Lanczos factorization of ncv
# vectors (each restart costs ncv - k more products). The CPU presets needed none
# (21 products for k = 5, ncv = 20); the paper's tol 0.001 and k = 10 may need some.
ASSUMED_ARPACK_RESTARTS = 0

# Without --calibrate or --from-run: sustained float32 FLOP/s of one job, and the fixed
# cost of a batch (kernel launches, Python), per kind. Assumptions, not measurements:
# cuda is ~22% of an H100 SXM's 67 TFLOP/s float32 peak (train.fp32_precision ieee: no
# TF32) and ~1 ms per training step of a NiN (about 100 kernel launches with the
# optimizer); cpu is one core at ~10 GFLOP/s. SVD work (norms) at svd_flops.
ASSUMED_DEVICE = {
    "cuda": {"flops": 15e12, "step_s": 1e-3, "batch_s": 3e-4, "hvp_batch_s": 3e-3, "svd_flops": 5e9, "startup_s": 10.0},
    "cpu": {"flops": 10e9, "step_s": 2e-3, "batch_s": 1e-3, "hvp_batch_s": 5e-3, "svd_flops": 2e9, "startup_s": 5.0},
}
# The GPU in a cost is held for the whole job: start-up (imports, CUDA context, loading
# the split and models) counts as GPU time.

