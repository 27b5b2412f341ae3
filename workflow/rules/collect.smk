# Stage 4: one tidy table, a row per model. Library: prunability.table


rule collect_table:
    """hp.* / gen.* / measure.* / is.* columns; the only input of statistics and figures. Also platform.json: the platforms the models ran on."""
    input:
        **{family: family_outputs(family) for family in config["measures"]["families"]},
        train=expand(f"{MODELS}/{{cell}}/train.json", cell=CELLS),
    output:
        table=f"{RESULTS}/table.csv",
        measure_info=f"{RESULTS}/measure_info.csv",
        curves=f"{RESULTS}/pruning_curves.csv",
        costs=f"{RESULTS}/measure_costs.csv",
        # the distinct platforms (machine and software) the models were trained and
        # measured on, with the cells of each
        platform=report(
            f"{RESULTS}/platform.json",
            caption="../report/platform.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/collect_table.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        cells=CELLS,
        families=config["measures"]["families"],
    script:
        "../scripts/collect_table.py"
