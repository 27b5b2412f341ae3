# Stage 4: one tidy table, a row per model. Library: prunability.table


rule collect_table:
    """hp.* / gen.* / measure.* / is.* columns; the only input of statistics and figures."""
    input:
        train=expand(f"{MODELS}/{{cell}}/train.json", cell=CELLS),
        measures=measure_outputs(),
    output:
        table=f"{RESULTS}/table.csv",
        measure_info=f"{RESULTS}/measure_info.csv",
        curves=f"{RESULTS}/pruning_curves.csv",
    params:
        models=MODELS,
        measures=MEASURES,
        cells=CELLS,
        families=config["measures"]["families"],
    log:
        f"{LOGS}/collect_table.log",
    conda:
        "../../envs/analysis.yaml"
    script:
        "../scripts/collect_table.py"
