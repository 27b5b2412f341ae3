# Stage 6: figures, registered for `snakemake --report`. Library: prunability.plots


rule figures:
    """Every figure of the report, from the tables and statistics."""
    input:
        table=rules.collect_table.output.table,
        measure_info=rules.collect_table.output.measure_info,
        curves=rules.collect_table.output.curves,
        summary=rules.statistics.output.summary,
        granulated=rules.statistics.output.granulated,
        sensitivity=rules.statistics.output.sensitivity,
        replicates=rules.statistics.output.replicates,
        seed_oracle=rules.statistics.output.seed_oracle,
        cmi=rules.conditional_mutual_information.output.cmi,
        mi=rules.prediction_mutual_information.output.mi,
        claims=rules.claims.output.claims,
    output:
        claims=figure("claims"),
        tau_psi=figure("tau_psi"),
        psi_heatmap=figure("psi_heatmap"),
        cmi=figure("cmi"),
        prediction_mi=figure("prediction_mi"),
        tolerance_sensitivity=figure("tolerance_sensitivity"),
        prunability_vs_gap=figure("prunability_vs_gap"),
        pruning_curves=figure("pruning_curves"),
        size_scaling=figure("size_scaling"),
    log:
        f"{LOGS}/figures.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        figures=config["figures"],
        main_target=config["statistics"]["main_target"],
        level=config["statistics"]["bootstrap"]["level"],
        rel_tol=config["measures"]["pruning"]["rel_tol"],
        axes=AXES,
    script:
        "../scripts/figures.py"
