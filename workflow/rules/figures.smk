# Stage 6: figures, registered for `snakemake --report`. Library: prunability.figures
# (answer, measures, pruning_curves, training; shared helpers in figures.style)

# The report's figures in reading order, each with the title the report lists it under.
# The report sorts a category's entries by their labels, so the number orders them.
FIGURE_TITLES = {
    "claims": "The paper's claims K1–K6, tested",
    "prunability_vs_gap": f"Prunability against {config['figures']['target']}",
    "tau_psi": "Kendall τ and granulated Ψ of every measure",
    "psi_heatmap": "ψ of every measure per grid axis",
    "measures_vs_gap": f"The main measures against {config['figures']['target']}, with τ",
    "prediction_mi": "K6: prunability's predictions against each baseline's",
    "size_scaling": "K4: prunability and κ against network size",
    "cmi": "Conditional mutual information, signed by τ",
    "tolerance_sensitivity": "Prunability's τ and Ψ against the loss tolerance",
    "pruning_curves": "Pruning curves of a few models",
    "pruning_curves_all": "Pruning curves of every converged model",
    "training_curves": "Training curves: loss and accuracy per epoch",
    "gap_by_axis": f"{config['figures']['target']} per value of each grid axis",
    "measure_costs": "Measure cost per family",
}


rule figures:
    """Every figure of the report, from the tables, the statistics and the training curves; registers table.csv in the report."""
    input:
        table=report(
            rules.collect_table.output.table,
            caption="../report/table.rst",
            category="Tables",
        ),
        measure_info=rules.collect_table.output.measure_info,
        curves=rules.collect_table.output.curves,
        costs=rules.collect_table.output.costs,
        training_curves=expand(f"{MODELS}/{{cell}}/curve.csv", cell=CELLS),
        summary=rules.statistics.output.summary,
        granulated=rules.statistics.output.granulated,
        sensitivity=rules.statistics.output.sensitivity,
        replicates=rules.statistics.output.replicates,
        seed_oracle=rules.statistics.output.seed_oracle,
        cmi=rules.conditional_mutual_information.output.cmi,
        mi=rules.prediction_mutual_information.output.mi,
        claims=rules.claims.output.claims,
    output:
        # each figure captioned by workflow/report/<name>.rst, labelled with its place in the reading order
        **{
            name: report(
                f"{RESULTS}/figures/{name}.png",
                caption=f"../report/{name}.rst",
                category="Figures",
                labels={"#": f"{number:02d}", "figure": title},
            )
            for number, (name, title) in enumerate(FIGURE_TITLES.items(), start=1)
        },
    log:
        f"{LOGS}/figures.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        figures=config["figures"],
        main_target=config["statistics"]["main_target"],
        level=config["statistics"]["bootstrap"]["level"],
        thresholds=config["statistics"]["claims"],
        rel_tol=config["measures"]["pruning"]["rel_tol"],
        stopping=config["train"]["stopping"],
        ce_target=config["train"]["ce_target"],
        axes=AXES,
        cells=CELLS,
    script:
        "../scripts/figures.py"


rule report_front:
    """The report's first page: the study's answer (each claim's verdict with its value and interval), then what was run."""
    input:
        claims=rules.claims.output.claims,
        description=REPORT_DESCRIPTION,
    output:
        REPORT_FRONT,
    log:
        f"{LOGS}/report_front.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        level=config["statistics"]["bootstrap"]["level"],
        study=config["study"],
    script:
        "../scripts/report_front.py"
