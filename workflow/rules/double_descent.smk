# Stage 5b (double-descent studies only, double_descent.sweep_axis set): every measure
# correlated with the test loss and test error across the width sweep, the mean curves
# per width with the interpolation threshold, and the figures of the sweep. Claim K5 is
# in the claims table. Library: prunability.double_descent,
# prunability.figures.double_descent


rule double_descent:
    """Kendall tau, Spearman rho and Pearson r of every measure across the sweep, with bootstrap intervals; the sweep's figures."""
    input:
        table=rules.collect_table.output.table,
        measure_info=rules.collect_table.output.measure_info,
    output:
        correlations=report(
            f"{STATS}/double_descent.csv",
            caption="../report/double_descent_table.rst",
            category="Double descent",
        ),
        means=report(
            f"{STATS}/double_descent_means.csv",
            caption="../report/double_descent_means.rst",
            category="Double descent",
        ),
        curves=report(
            f"{RESULTS}/figures/double_descent.png",
            caption="../report/double_descent.rst",
            category="Double descent",
        ),
        scatter=report(
            f"{RESULTS}/figures/double_descent_scatter.png",
            caption="../report/double_descent_scatter.rst",
            category="Double descent",
        ),
    log:
        f"{LOGS}/double_descent.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        settings=config["double_descent"],
        bootstrap=config["statistics"]["bootstrap"],
    script:
        "../scripts/double_descent.py"


# What a double-descent study adds to the default target.
DOUBLE_DESCENT_OUTPUTS = (
    rules.double_descent.output if config["double_descent"]["sweep_axis"] else []
)
