# Stage 5: statistics of every measure against every generalization target.
# Kendall tau (tau-a as Jiang et al., and tau-b), granulated Kendall psi / Psi with
# bootstrap intervals, the grid's completeness, the tolerance sensitivity of
# prunability, conditional mutual information, mutual information between measures'
# predictions, and the claims table K1-K6; with a replicate axis (seed), the seed noise
# floor: tau and Psi within each replicate and the seed oracle.
# Library: prunability.analysis (ranking, bootstrap, information, replicates,
# completeness), prunability.claims


rule statistics:
    """Rank statistics with bootstrap intervals; non-converged and non-finite rows are excluded and counted."""
    input:
        table=rules.collect_table.output.table,
        measure_info=rules.collect_table.output.measure_info,
        curves=rules.collect_table.output.curves,
    output:
        summary=report(
            f"{STATS}/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        granulated=f"{STATS}/granulated.csv",
        completeness=report(
            f"{STATS}/completeness.csv",
            caption="../report/completeness.rst",
            category="Tables",
        ),
        sensitivity=report(
            f"{STATS}/tolerance_sensitivity.csv",
            caption="../report/tolerance_sensitivity.rst",
            category="Tables",
        ),
        replicates=report(
            f"{STATS}/replicates.csv",
            caption="../report/replicates.rst",
            category="Tables",
        ),
        replicate_spread=report(
            f"{STATS}/replicate_spread.csv",
            caption="../report/replicate_spread.rst",
            category="Tables",
        ),
        seed_oracle=report(
            f"{STATS}/seed_oracle.csv",
            caption="../report/seed_oracle.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/statistics.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        targets=config["statistics"]["targets"],
        axes=AXES,
        grid_axes=list(config["grid"]),
        grid=config["grid"],
        replicate_axis=config["statistics"]["replicate_axis"],
        cells=CELLS,
        require_full_grid=config["statistics"]["require_full_grid"],
        bootstrap=config["statistics"]["bootstrap"],
        rel_tols=sorted(
            {
                config["measures"]["pruning"]["rel_tol"],
                *config["measures"]["pruning"]["rel_tol_sweep"],
            }
        ),
        abs_tol=config["measures"]["pruning"]["abs_tol"],
    script:
        "../scripts/statistics.py"


rule conditional_mutual_information:
    """Jiang et al.'s CMI (PGDL scoring code) and the careful variant, per measure and target."""
    input:
        table=rules.collect_table.output.table,
        measure_info=rules.collect_table.output.measure_info,
    output:
        cmi=report(
            f"{STATS}/cmi.csv",
            caption="../report/cmi_table.rst",
            category="Tables",
        ),
        scores=f"{STATS}/cmi_scores.csv",
    log:
        f"{LOGS}/conditional_mutual_information.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        targets=config["statistics"]["targets"],
        values={axis: config["grid"][axis] for axis in AXES},
        grid_axes=list(config["grid"]),
        cells=CELLS,
        require_full_grid=config["statistics"]["require_full_grid"],
        max_set_size=config["statistics"]["cmi_max_set_size"],
    script:
        "../scripts/conditional_mutual_information.py"


rule prediction_mutual_information:
    """Mutual information between every two measures' predictions (claim K6)."""
    input:
        table=rules.collect_table.output.table,
        measure_info=rules.collect_table.output.measure_info,
    output:
        mi=f"{STATS}/prediction_mi.csv",
    log:
        f"{LOGS}/prediction_mutual_information.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        target=config["statistics"]["main_target"],
    script:
        "../scripts/prediction_mutual_information.py"


rule claims:
    """The paper's claims K1-K6: statistic, value, bootstrap interval and verdict."""
    input:
        table=rules.collect_table.output.table,
        measure_info=rules.collect_table.output.measure_info,
        summary=rules.statistics.output.summary,
    output:
        claims=report(
            f"{STATS}/claims.csv",
            caption="../report/claims_table.rst",
            category="Tables",
        ),
    log:
        f"{LOGS}/claims.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        target=config["statistics"]["main_target"],
        bootstrap=config["statistics"]["bootstrap"],
        thresholds=config["statistics"]["claims"],
        sweep_axis=config["double_descent"]["sweep_axis"],
    script:
        "../scripts/claims.py"
