# Stage 5c (generalization_stability.enabled only): the generalization-stability
# tradeoff of Bartoldson et al. (2020). One training job per run, pruning (or, in a noise
# control, holding) its targeted layers on schedule, then one analysis job: per-run mean
# stability and best post-pruning test accuracy, Kendall tau and Pearson r across runs,
# and two figures. Library: prunability.stability, prunability.stability_analysis,
# prunability.figures.stability


rule stability_run:
    """Train one run with pruning during training, logging the test accuracy just before and just after every pruning event; it resumes from results/<study>/checkpoints/stability/<run>/ after a kill."""
    input:
        split=rules.prepare_data.output.split,
    output:
        epochs=f"{STABILITY}/runs/{{run}}/epochs.csv",
        summary=f"{STABILITY}/runs/{{run}}/summary.json",
    log:
        f"{LOGS}/stability_run/{{run}}.log",
    benchmark:
        f"{BENCHMARKS}/stability_run/{{run}}.tsv"
    wildcard_constraints:
        run="[A-Za-z0-9-]+",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=config["resources"]["gpus_per_job"],
        mem_mb=job_mem_mb,
        runtime=stability_runtime,
    params:
        run=stability_run,
        # the recipe, and the schedule and noise settings only for the runs they shape
        settings=stability_settings,
        model=config["model"],
        architecture={
            k: config["hyperparameters"][k]
            for k in ("depth", "width", "batchnorm", "dropout")
        },
        device=config["device"],
        deterministic=config["train"]["deterministic"],
        fp32_precision=config["train"]["fp32_precision"],
    script:
        "../scripts/stability_run.py"


rule stability_analysis:
    """Mean stability and best post-pruning test accuracy of every run; Kendall tau and Pearson r across runs with bootstrap intervals; the figures."""
    input:
        summaries=expand(f"{STABILITY}/runs/{{run}}/summary.json", run=STABILITY_RUNS),
        epochs=expand(f"{STABILITY}/runs/{{run}}/epochs.csv", run=STABILITY_RUNS),
    output:
        runs=report(
            f"{STABILITY}/runs.csv",
            caption="../report/stability_runs.rst",
            category="Pruning during training",
        ),
        correlations=report(
            f"{STABILITY}/correlations.csv",
            caption="../report/stability_correlations.rst",
            category="Pruning during training",
        ),
        scatter=report(
            f"{RESULTS}/figures/stability_vs_accuracy.png",
            caption="../report/stability_vs_accuracy.rst",
            category="Pruning during training",
        ),
        curves=report(
            f"{RESULTS}/figures/stability_curves.png",
            caption="../report/stability_curves.rst",
            category="Pruning during training",
        ),
    log:
        f"{LOGS}/stability_analysis.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        runs=STABILITY_RUNS,
        bootstrap=config["statistics"]["bootstrap"],
    script:
        "../scripts/stability_analysis.py"


# What the branch adds to the default target.
STABILITY_OUTPUTS = (
    rules.stability_analysis.output
    if config["generalization_stability"]["enabled"]
    else []
)
