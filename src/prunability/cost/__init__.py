"""What a preset costs, before it is launched.

    python -m prunability.cost                                   # the default study
    python -m prunability.cost --configfile configs/paper-nin-cifar10.yaml --device cuda --gpus 4
    python -m prunability.cost --configfile configs/cifar10-subset.yaml --calibrate
    python -m prunability.cost --configfile configs/cifar10-subset.yaml --calibrate --from-run results/cifar10-subset

Prints the jobs per rule (from a Snakemake dry run of the whole preset), then a small
cost model: for every grid cell, the images each stage pushes through the model, split
by what is done with them (``KINDS``: a training step, a gradient, a forward pass, a
Hessian-vector product), times seconds per image of that kind; plus one start-up per
job; then the wall time with the given cores or GPUs and the CPU- or GPU-hours.

Seconds per image come from one of
- ``--calibrate``: each kind timed on random images of the preset's shape, with the
  package's own code and batch sizes, for every distinct model of the grid (and batch
  size) as the jobs build it, on ``--device`` with one thread on a CPU (every job runs
  with ``threads: 1``); and the start-up of a one-rule Snakemake job;
- ``--from-run results/<study>``: an earlier run's in-process times (train.json and
  each family's JSON) over the images its counts imply, per FLOP so that they carry to
  other model sizes; start-up from its Snakemake benchmark files;
- neither: FLOPs (counted by torch on one image) at an assumed sustained throughput
  plus an assumed per-batch overhead (``ASSUMED_DEVICE``), stated in the output.

How many epochs a model trains to the CE target, where each pruning sweep stops, how
many halvings a flatness search takes and how many Hessian-vector products ARPACK needs
are properties of the trained models, not of the settings: the model takes the
assumptions in ``cost.assumptions`` (the epoch cap, an upper bound), and ``--from-run``
also prints the estimate with that run's own counts next to its measured totals per
rule.
"""

from .assumptions import ASSUMED_ARPACK_RESTARTS, ASSUMED_BISECTION_STEPS, ASSUMED_DEVICE, ASSUMED_SWEEP_STOP
from .cli import MODEL_HP, fmt_s, key_of, main, plan, seconds_per_image, snakemake_job_counts, table
from .earlier_run import benchmark_totals, run_cells, seconds_from_run
from .passes import KINDS, assumed_outcomes, images, stability_images, sweep_evaluations
from .preset import REPO, cells_per_job, data_shape, grid_cells, stability_model
from .seconds import CPU_FLOPS_PER_CALL, assumed_seconds, flop_counts, measure_seconds, startup_seconds, svd_work
