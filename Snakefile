# prunability: does robustness to pruning predict generalization? (Kuhn et al. 2021)
#
#   prepare_data -> train_model (one job per grid cell) -> measure_<family> (per cell)
#     -> collect_table -> statistics, conditional_mutual_information,
#        prediction_mutual_information -> claims -> figures (+ snakemake --report)
#     -> double_descent (a width sweep on noisy labels only)
#
# Read the rule files in order; each stage has one rule file and one library module.

import os

from snakemake.utils import min_version

min_version("9.0")


# The default study, unless a preset is given with --configfile: presets replace
# it rather than being merged into it (a merge would add the default grid's axes).
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/measures.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/statistics.smk"
include: "workflow/rules/double_descent.smk"
include: "workflow/rules/stability.smk"
include: "workflow/rules/corruptions.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/export.smk"


# On a cluster these run on the submitting machine, not through the queue: the
# analysis jobs take seconds, and download_cifar10 needs the internet.
localrules:
    all,
    train_all,
    measures_all,
    stats_all,
    download_cifar10,
    collect_table,
    statistics,
    conditional_mutual_information,
    prediction_mutual_information,
    claims,
    figures,
    double_descent,
    stability_analysis,
    prune_potential_figures,


# The report's first page: once a run has written the study's answer (rule report_front),
# that page; before, the description of what the study runs.
report: os.path.abspath(REPORT_FRONT) if os.path.exists(REPORT_FRONT) else REPORT_DESCRIPTION


# device: cuda on a machine without CUDA would fail only as each training job starts,
# after the data is prepared: a local run refuses before any job. (Cluster jobs run
# where their allocation has the GPU; a dry run runs nothing.)
onstart:
    if config["device"] == "cuda" and workflow.local_exec:
        from prunability.numerics import cuda_unavailable

        on_device = [
            j
            for j in workflow.dag.needrun_jobs()
            if "device" in j.rule.params.keys()
        ]
        reason = cuda_unavailable() if on_device else None
        if reason:
            raise WorkflowError(
                f"device is 'cuda' in the configuration and {len(on_device)} jobs would run on it, but {reason}. "
                "Run on the CPU with --config device=cpu, install a CUDA build of torch, or submit to a "
                "cluster with GPUs (--executor slurm --profile profiles/slurm)."
            )


rule all:
    default_target: True
    input:
        rules.figures.output,
        rules.report_front.output,
        rules.statistics.output,
        rules.conditional_mutual_information.output,
        DOUBLE_DESCENT_OUTPUTS,
        STABILITY_OUTPUTS,
        PRUNE_POTENTIAL_OUTPUTS,


rule train_all:
    input:
        expand(f"{MODELS}/{{cell}}/train.json", cell=CELLS),


rule measures_all:
    input:
        measure_outputs(),


rule stats_all:
    input:
        rules.statistics.output,
        rules.conditional_mutual_information.output,
        rules.prediction_mutual_information.output,
        rules.claims.output,
