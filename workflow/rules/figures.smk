# Stage 6: figures, registered for `snakemake --report`. Library: prunability.plots


rule figures:
    """Tau and Psi per measure, prunability against the gap, pruning curves."""
    input:
        table=rules.collect_table.output.table,
        curves=rules.collect_table.output.curves,
        summary=rules.statistics.output.summary,
    output:
        tau_psi=report(
            f"{RESULTS}/figures/tau_psi.png",
            caption="../report/tau_psi.rst",
            category="Figures",
        ),
        prunability_vs_gap=report(
            f"{RESULTS}/figures/prunability_vs_gap.png",
            caption="../report/prunability_vs_gap.rst",
            category="Figures",
        ),
        pruning_curves=report(
            f"{RESULTS}/figures/pruning_curves.png",
            caption="../report/pruning_curves.rst",
            category="Figures",
        ),
    log:
        f"{LOGS}/figures.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        figures=config["figures"],
        axes=[axis for axis, values in config["grid"].items() if len(values) > 1],
    script:
        "../scripts/figures.py"
