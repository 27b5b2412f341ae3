# Stage 3b (prune_potential in measures.families only): the corrupted test sets, made
# once per study, which measure_prune_potential reads, and the family's figures.
# Library: prunability.corruptions, prunability.measures.prune_potential,
# prunability.analysis.prune_potential, prunability.figures.prune_potential


rule corrupt_data:
    """The test split under each corruption and severity of measures.prune_potential (CIFAR-10-C's formulas, seeded), one uint8 file."""
    input:
        split=rules.prepare_data.output.split,
    output:
        corruptions=family_input_files("prune_potential")["corruptions"],
    log:
        f"{LOGS}/corrupt_data.log",
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=job_mem_mb,
        runtime=lambda wildcards, attempt: attempt * 30,
    params:
        source=config["data"]["source"],
        corruptions=config["measures"]["prune_potential"]["corruptions"],
        severities=config["measures"]["prune_potential"]["severities"],
        table=config["measures"]["prune_potential"]["severity_table"],
        seed=config["measures"]["prune_potential"]["seed"],
    script:
        "../scripts/corrupt_data.py"


rule prune_potential_figures:
    """Prune potential per distribution with bootstrap intervals, excess error against prune ratio, and the input-noise test."""
    input:
        measures=family_outputs("prune_potential"),
        train=expand(f"{MODELS}/{{cell}}/train.json", cell=CELLS),
    output:
        summary=report(
            f"{STATS}/prune_potential.csv",
            caption="../report/prune_potential_table.rst",
            category="Prune potential",
        ),
        by_distribution=report(
            f"{RESULTS}/figures/prune_potential.png",
            caption="../report/prune_potential.rst",
            category="Prune potential",
        ),
        excess_error=report(
            f"{RESULTS}/figures/excess_error.png",
            caption="../report/prune_potential_excess_error.rst",
            category="Prune potential",
        ),
        noise=report(
            f"{RESULTS}/figures/noise_agreement.png",
            caption="../report/prune_potential_noise.rst",
            category="Prune potential",
        ),
    log:
        f"{LOGS}/prune_potential_figures.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=config["measures"]["prune_potential"],
        bootstrap=config["statistics"]["bootstrap"],
    script:
        "../scripts/prune_potential_figures.py"


# What the prune_potential family adds to the default target.
PRUNE_POTENTIAL_OUTPUTS = (
    rules.prune_potential_figures.output
    if "prune_potential" in config["measures"]["families"]
    else []
)
