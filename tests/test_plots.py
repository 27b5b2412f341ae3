"""Tests for prunability.figures: every figure of the report on a small synthetic study.

The study is a full 2 x 2 x 2 grid of 8 models, model k = 4a + 2b + c with
hp.width = (8, 16)[a], hp.depth = (2, 3)[b], hp.lr = (0.1, 0.01)[c] and gaps growing
with k. Four measures from three families (pruning, norms, flatness), listed in
measure_info in a deliberately non-family order. Every table the figures read is
computed by the library functions the workflow uses (summary_tables,
bootstrap_intervals, flag_partial_grid, cmi_tables, prediction_mi_table,
prunability_by_tolerance, tolerance_sensitivity, claims_table; 50 bootstrap
resamples) and round-tripped through CSV, as the figures rule reads them. The
training curves (curve.csv of every model, with its name) and the measure costs
(measure_costs.csv) are made up with the columns the workflow writes.

Orderings are checked on the figure objects: ``_save`` is wrapped to keep each
figure it writes (no image parsing needed).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import matplotlib
import matplotlib.image
import matplotlib.pyplot
import numpy as np
import pandas as pd
import pytest

from prunability import claims, double_descent
from prunability.analysis.bootstrap import bootstrap_counts, bootstrap_intervals
from prunability.analysis.completeness import flag_partial_grid
from prunability.analysis.information import cmi_tables, prediction_mi_table
from prunability.analysis.ranking import summary_tables, tolerance_sensitivity
from prunability.analysis.replicates import seed_noise_floor
from prunability.figures import answer, measures, style
from prunability.figures import double_descent as double_descent_figures
from prunability.figures import pruning_curves as curves_figures
from prunability.figures import training as training_figures
from prunability.table import CURVE_COLUMNS, prunability_by_tolerance

N = 8
WIDTHS, DEPTHS, LRS = (8, 16), (2, 3), (0.1, 0.01)
AXES = ["hp.width", "hp.depth", "hp.lr"]
VALUES = {"hp.width": list(WIDTHS), "hp.depth": list(DEPTHS), "hp.lr": list(LRS)}
TARGETS = ["gen.acc_gap", "gen.loss_gap"]
TARGET = "acc_gap"
RESAMPLES = 50
LEVEL = 0.95
REL_TOL = 0.1
TAU_THRESHOLD = 0.2
MI_THRESHOLD = 0.1
CE_TARGET = 0.01
EPOCHS = 5  # model k trains for EPOCHS + k epochs
FAMILIES = ["pruning", "norms", "flatness"]
REL_TOLS = [0.01, 0.1, 1.0]
CURVE_ALPHAS = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]

# registry order of this study (not grouped by family on purpose)
INFO_ROWS = [
    ("pacbayes_flatness", "flatness", 1),
    ("prunability", "pruning", 1),
    ("params", "norms", 1),
    ("kept_count", "pruning", 1),
]
BY_FAMILY = ["prunability", "kept_count", "params", "pacbayes_flatness"]
INFO = pd.DataFrame([{"name": n, "family": f, "orientation": o, "equation": "", "description": n} for n, f, o in INFO_ROWS])

# taus against the gap (which grows with k): prunability 26/28 (two tied pairs), params
# 24/28 (1000 w d: tied within (w, d)), kept_count 22/28, pacbayes_flatness 20/28
THREE_SWAPS = np.array([2.0, 1, 4, 3, 6, 5, 7, 8])
FOUR_SWAPS = np.array([2.0, 1, 4, 3, 6, 5, 8, 7])


# --------------------------------------------------------------------------- the study


def model_name(w, d, lr) -> str:
    return f"width~{w}/depth~{d}/lr~{lr}"


def make_curves(models: list[str], slopes: np.ndarray) -> pd.DataFrame:
    """Magnitude and random curves: loss = base (1 + s (1 - alpha)) (twice the slope for random)."""
    rows = []
    for model, slope in zip(models, slopes):
        base = 0.01
        for curve, factor in (("magnitude", 1.0), ("random_seed_0", 2.0), ("random_seed_1", 2.5)):
            for alpha in CURVE_ALPHAS:
                rows.append(dict(model=model, curve=curve, alpha=alpha, kept=int(round(alpha * 1000)),
                                 loss=base * (1 + factor * slope * (1 - alpha)), acc=1.0, stage="grid",
                                 base_loss=base, base_acc=1.0, bound=base * (1 + REL_TOL)))
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def make_training_curves(models: list[str]) -> pd.DataFrame:
    """curve.csv of every model, concatenated with a model column as the figures rule
    does: model k trains EPOCHS + k epochs, its training loss halving each epoch from 1."""
    rows = []
    for k, model in enumerate(models):
        for epoch in range(1, EPOCHS + k + 1):
            rows.append(dict(epoch=epoch, step=10 * epoch, train_loss=0.5 ** (epoch - 1), train_acc=1 - 0.5 ** epoch,
                             test_loss=0.5 ** (epoch - 1) + 0.1, test_acc=0.9 - 0.5 ** epoch, wall_time_s=0.1 * epoch,
                             model=model))
    return pd.DataFrame(rows)


def make_costs(models: list[str], families: list[str]) -> pd.DataFrame:
    """measure_costs.csv: model k trains for k + 1 seconds; family i measures for (i + 1) / 10 of that."""
    rows = [dict(model=model, family=family, measure_time_s=(i + 1) / 10 * (k + 1), train_time_s=k + 1.0,
                 fraction_of_training=(i + 1) / 10)
            for k, model in enumerate(models) for i, family in enumerate(families)]
    return pd.DataFrame(rows)


def make_table(unconverged=(), nan_measures=(), pruning=True):
    """(table, info, curves): the 8-model grid; ``pruning=False`` drops the pruning family."""
    grid = list(itertools.product(range(2), repeat=3))
    models = [model_name(WIDTHS[a], DEPTHS[b], LRS[c]) for a, b, c in grid]
    k = np.arange(N, dtype=float)
    gap = 0.01 * (k + 1)
    n_params = np.array([1000.0 * WIDTHS[a] * DEPTHS[b] for a, b, _ in grid])
    table = pd.DataFrame({
        "model": models,
        "hp.width": [WIDTHS[a] for a, _, _ in grid],
        "hp.depth": [DEPTHS[b] for _, b, _ in grid],
        "hp.lr": [LRS[c] for _, _, c in grid],
        "gen.train_acc": 1.0,
        "gen.test_acc": 1.0 - gap,
        "gen.train_loss": 0.01,
        "gen.test_loss": 0.01 + 2 * gap[::-1],
        "gen.acc_gap": gap,
        "gen.loss_gap": 2 * gap[::-1],
        "gen.test_error": gap,
    })
    info = INFO.copy()
    # a steeper curve (larger k) leaves less to prune: prunability grows with k
    slopes = 0.05 * (k + 1)
    curves = make_curves(models, slopes)
    if pruning:
        at_tol = prunability_by_tolerance(curves, [REL_TOL], 0.0).set_index("model")["prunability"]
        table["measure.prunability"] = table["model"].map(at_tol)
        table["measure.kept_count"] = 100 * THREE_SWAPS
    else:
        info = info[info["family"] != "pruning"].reset_index(drop=True)
        curves = curves.iloc[0:0]
    table["measure.params"] = n_params
    table["measure.pacbayes_flatness"] = FOUR_SWAPS
    for name in nan_measures:
        table[f"measure.{name}"] = np.nan
    table["train.n_parameters"] = n_params
    table["train.n_prunable"] = 0.9 * n_params  # |P|: the Conv/Linear weights, without BN and biases
    table["is.converged"] = [i not in unconverged for i in range(N)]
    table["is.diverged"] = False
    return table, info, curves


def roundtrip(frame: pd.DataFrame, folder: Path, name: str) -> pd.DataFrame:
    """What the figures rule reads: the frame written and read back as CSV."""
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return pd.read_csv(path)


def build_study(folder: Path, unconverged=(), nan_measures=(), pruning=True, require_full_grid=False) -> dict:
    """Every input of the figures rule, as the statistics / cmi / mi / claims rules make them."""
    folder.mkdir(parents=True, exist_ok=True)
    table, info, curves = make_table(unconverged, nan_measures, pruning)
    orientations = dict(zip(info["name"], info["orientation"]))
    n_duplicates = 0
    summary, granulated = summary_tables(table, orientations, TARGETS, AXES)
    counts = bootstrap_counts(len(table), RESAMPLES, 0)
    intervals = bootstrap_intervals(table, orientations, TARGETS, AXES, counts, LEVEL)
    summary = summary.merge(intervals, on=["measure", "target"])
    summary = flag_partial_grid(summary, N, n_duplicates, require_full_grid, ["Psi", "Psi_low", "Psi_high"])
    if require_full_grid:
        granulated = granulated.merge(summary[["measure", "target", "full_grid"]], on=["measure", "target"])
        granulated.loc[~granulated.pop("full_grid"), "psi"] = float("nan")
    by_tolerance = prunability_by_tolerance(curves, REL_TOLS, 0.0)
    sensitivity = tolerance_sensitivity(table, by_tolerance, TARGETS, AXES, counts, LEVEL)
    sensitivity = flag_partial_grid(sensitivity, N, n_duplicates, require_full_grid, ["Psi", "Psi_low", "Psi_high"])
    cmi, _ = cmi_tables(table, orientations, TARGETS, VALUES, 2)
    cmi = flag_partial_grid(cmi, N, n_duplicates, require_full_grid, ["cmi_jiang", "cmi_careful"])
    mi = prediction_mi_table(table, info["name"].tolist(), f"gen.{TARGET}")
    claims_frame = claims.claims_table(table, info, summary, f"gen.{TARGET}", counts, LEVEL, 0.5, 0.5)
    families = FAMILIES if pruning else FAMILIES[1:]
    frames = dict(table=table, measure_info=info, summary=summary, granulated=granulated, cmi=cmi, mi=mi,
                  sensitivity=sensitivity, curves=curves, claims=claims_frame,
                  training=make_training_curves(table["model"].tolist()), costs=make_costs(table["model"].tolist(), families))
    return {name: roundtrip(frame, folder, name) for name, frame in frames.items()}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return build_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def partial_study(tmp_path_factory):
    """Model 5 did not converge."""
    return build_study(tmp_path_factory.mktemp("partial"), unconverged=(5,))


@pytest.fixture(scope="module")
def nan_study(tmp_path_factory):
    """pacbayes_flatness is NaN for every model."""
    return build_study(tmp_path_factory.mktemp("nan"), nan_measures=("pacbayes_flatness",))


@pytest.fixture(scope="module")
def required_full_study(tmp_path_factory):
    """Model 5 did not converge and the statistics require a full grid."""
    return build_study(tmp_path_factory.mktemp("required"), unconverged=(5,), require_full_grid=True)


FIGURE_MODULES = (style, answer, measures, curves_figures, training_figures, double_descent_figures)


def replace_save(monkeypatch, save) -> None:
    """``save`` in place of ``_save`` in every figure module (each imported it from style)."""
    for module in FIGURE_MODULES:
        monkeypatch.setattr(module, "_save", save)


@pytest.fixture
def captured(monkeypatch):
    """The figures written by the plot functions (``_save`` still writes them)."""
    figures = []
    original = style._save

    def spy(fig, path):
        figures.append(fig)
        original(fig, path)

    replace_save(monkeypatch, spy)
    return figures


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plot functions make, kept and not written (checks of the figure
    objects only; the PNGs are checked elsewhere, and rendering is the slow part)."""
    figures = []

    def keep(fig, path):
        figures.append(fig)
        matplotlib.pyplot.close(fig)

    replace_save(monkeypatch, keep)
    return figures


# --------------------------------------------------------------------------- helpers


def call(name: str, d: dict, path, target=TARGET):
    """Call plot function ``name`` as workflow/scripts/figures.py does."""
    if name == "claims_figure":
        return answer.claims_figure(d["claims"], LEVEL, path)
    if name == "tau_intervals":
        return answer.tau_intervals(d["summary"], d["measure_info"], target, path, tau_threshold=TAU_THRESHOLD)
    if name == "psi_heatmap":
        return answer.psi_heatmap(d["granulated"], d["summary"], d["measure_info"], target, path)
    if name == "measures_vs_gap":
        return measures.measures_vs_gap(d["table"], d["summary"], d["measure_info"], target, path)
    if name == "cmi_bars":
        return answer.cmi_bars(d["cmi"], d["summary"], d["measure_info"], target, path)
    if name == "prediction_mi_bars":
        return answer.prediction_mi_bars(d["mi"], d["measure_info"], target, MI_THRESHOLD, path)
    if name == "tolerance_sensitivity":
        return answer.tolerance_sensitivity(d["sensitivity"], target, REL_TOL, path)
    if name == "prunability_vs_gap":
        return measures.prunability_vs_gap(d["table"], d["summary"], target, ["width", "depth"], path)
    if name == "pruning_curves":
        return curves_figures.pruning_curves(d["curves"], d["table"], target, 3, path)
    if name == "pruning_curves_all":
        return curves_figures.pruning_curves_all(d["curves"], d["table"], target, path)
    if name == "size_scaling":
        return measures.size_scaling(d["table"], path)
    if name == "training_curves":
        return training_figures.training_curves(d["training"], d["table"], ["width", "depth", "lr"], "ce_target", CE_TARGET, path)
    if name == "gap_by_axis":
        return training_figures.gap_by_axis(d["table"], target, ["width", "depth", "lr"], path)
    if name == "measure_costs":
        return training_figures.measure_costs(d["costs"], path)
    raise KeyError(name)


PLOTS = ["claims_figure", "tau_intervals", "psi_heatmap", "measures_vs_gap", "cmi_bars", "prediction_mi_bars",
         "tolerance_sensitivity", "prunability_vs_gap", "pruning_curves", "pruning_curves_all", "size_scaling",
         "training_curves", "gap_by_axis", "measure_costs"]


def assert_png(path: Path) -> tuple[int, int]:
    """``path`` is a PNG, alone in its folder (no temporary file left); its (height, width)."""
    path = Path(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 10 and image.shape[1] > 10
    return image.shape[:2]


def placeholder_text(fig) -> str | None:
    """The message of a placeholder figure (one axis off, one text), else None."""
    if len(fig.axes) == 1 and not fig.axes[0].axison and len(fig.axes[0].texts) == 1:
        return fig.axes[0].texts[0].get_text()
    return None


def labels(ticks) -> list[str]:
    return [t.get_text() for t in ticks]


def panel_models(fig) -> list[str]:
    """The hyperparameter lines (curves_figures._two_lines of the model) of each pruning-curve panel's title."""
    return [ax.get_title().split("\nprunability")[0] for ax in titled_axes(fig)]


def highlighted(ax) -> list:
    """The bands that highlight a measure's row (gid "highlight")."""
    return [patch for patch in ax.patches if patch.get_gid() == "highlight"]


def oracle_bands(ax) -> list:
    """The seed oracle's range bands (gid "seed oracle")."""
    return [patch for patch in ax.patches if patch.get_gid() == "seed oracle"]


def readable(names, info=None) -> list[str]:
    """The y tick labels the figures give ``names``: style.measure_labels of the study's measure_info."""
    info = INFO if info is None else info
    return [style.measure_labels(info).get(n) or style.measure_label(n) for n in names]


def titled_axes(fig) -> list:
    """The figure's axes with a title (seaborn's colour bars have none)."""
    return [ax for ax in fig.axes if ax.get_title()]


# --------------------------------------------------------------------------- the study itself


def test_study_is_what_the_figures_expect(study, partial_study):
    assert len(study["table"]) == N and study["table"]["is.converged"].all()
    assert set(study["summary"]["measure"]) == set(BY_FAMILY)
    assert study["summary"]["full_grid"].all()
    # a prunability that varies, so its statistics are not degenerate
    assert study["table"]["measure.prunability"].nunique() > 2
    assert sorted(study["sensitivity"]["rel_tol"].unique()) == REL_TOLS
    assert study["cmi"][["cmi_jiang", "cmi_careful"]].notna().all().all()
    assert len(study["mi"]) == len(BY_FAMILY) ** 2
    assert set(study["claims"]["claim"]) == {"K1", "K2", "K3", "K4", "K5", "K6"}
    assert not partial_study["summary"]["full_grid"].any()
    assert (partial_study["summary"]["n_used"] == N - 1).all()


# --------------------------------------------------------------------------- every figure is a PNG


@pytest.mark.parametrize("name", PLOTS)
def test_writes_png(name, study, tmp_path, captured):
    path = tmp_path / "out" / f"{name}.png"  # the folder does not exist yet
    call(name, study, path)
    assert_png(path)
    assert len(captured) == 1
    assert placeholder_text(captured[0]) is None, f"{name} drew a placeholder on a full study"
    if name == "pruning_curves":  # one panel per model picked by pick_spread, in its order
        prunability = study["table"].set_index("model")["measure.prunability"]
        models = curves_figures.pick_spread(prunability, 3)
        assert len(models) == 3
        assert prunability[models[0]] == prunability.min() and prunability[models[-1]] == prunability.max()
        titled = titled_axes(captured[0])
        assert panel_models(captured[0]) == [curves_figures._two_lines(m) for m in models]
        gap = study["table"].set_index("model")[f"gen.{TARGET}"]
        for ax, model in zip(titled, models):
            assert ax.get_title().endswith(f"\nprunability {prunability[model]:.3f}, {TARGET} {gap[model]:.3g}")
        assert all(ax.get_yscale() == "log" for ax in titled)


def test_replaces_an_existing_file(study, tmp_path):
    path = tmp_path / "tau.png"
    path.write_bytes(b"stale")
    call("tau_intervals", study, path)
    assert_png(path)


@pytest.mark.parametrize("name", ["tau_intervals", "cmi_bars"])
def test_failed_save_leaves_nothing(name, study, tmp_path, monkeypatch):
    """A save that fails half-way leaves neither the figure nor a temporary file."""
    def broken(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        call(name, study, tmp_path / f"{name}.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", PLOTS)
def test_partial_grid(name, partial_study, tmp_path, captured):
    """One model not converged: every figure is still drawn (not a placeholder)."""
    path = tmp_path / f"{name}.png"
    call(name, partial_study, path)
    assert_png(path)
    assert placeholder_text(captured[0]) is None


@pytest.mark.parametrize("name", ["tau_intervals", "psi_heatmap", "cmi_bars", "tolerance_sensitivity"])
def test_partial_grid_required_full(name, required_full_study, tmp_path, captured):
    """require_full_grid on a partial grid: Psi and CMI are NaN; nothing crashes."""
    d = required_full_study
    assert d["summary"]["Psi"].isna().all() and d["granulated"]["psi"].isna().all()
    path = tmp_path / "out" / f"{name}.png"
    call(name, d, path)
    assert_png(path)
    if name == "cmi_bars":  # no CMI left at all
        assert "no conditional mutual information" in placeholder_text(captured[0])
    else:
        assert placeholder_text(captured[0]) is None


# --------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("name, message", [
    ("tau_intervals", "no statistics for target test_error"),
    ("psi_heatmap", "granulated Kendall needs a grid axis"),
    ("cmi_bars", "no conditional mutual information"),
    ("tolerance_sensitivity", "no pruning curves"),
])
def test_no_rows_for_the_target(name, message, study, tmp_path, captured):
    """The statistics were computed for acc_gap and loss_gap only."""
    path = tmp_path / f"{name}.png"
    call(name, study, path, target="test_error")
    assert_png(path)
    assert message in placeholder_text(captured[0])


def test_empty_prediction_mi(study, tmp_path, captured):
    path = tmp_path / "mi.png"
    answer.prediction_mi_bars(study["mi"].iloc[0:0], study["measure_info"], TARGET, MI_THRESHOLD, path)
    assert_png(path)
    assert "no mutual information between prunability and a baseline" in placeholder_text(captured[0])


def test_empty_claims_and_summary_frames(study, tmp_path, captured):
    """Frames with the columns but no row (as read from a header-only CSV)."""
    answer.tau_intervals(study["summary"].iloc[0:0], study["measure_info"], TARGET, tmp_path / "a" / "tau.png")
    answer.cmi_bars(study["cmi"].iloc[0:0], study["summary"], study["measure_info"], TARGET, tmp_path / "b" / "cmi.png")
    answer.psi_heatmap(study["granulated"].iloc[0:0], study["summary"], study["measure_info"], TARGET,
                      tmp_path / "c" / "psi.png")
    answer.tolerance_sensitivity(study["sensitivity"].iloc[0:0], TARGET, REL_TOL, tmp_path / "d" / "tol.png")
    for folder in "abcd":
        assert_png(next((tmp_path / folder).iterdir()))
    assert all(placeholder_text(fig) for fig in captured)


@pytest.mark.parametrize("name", ["tau_intervals", "psi_heatmap", "cmi_bars", "prediction_mi_bars", "measures_vs_gap"])
def test_measure_nan_everywhere(name, nan_study, tmp_path, captured):
    """A measure with no finite value: NaN statistics, the figure is still drawn."""
    d = nan_study
    row = d["summary"][(d["summary"]["measure"] == "pacbayes_flatness") & (d["summary"]["target"] == f"gen.{TARGET}")]
    assert row["n_used"].item() == 0 and math.isnan(row["tau_a"].item()) and math.isnan(row["tau_a_low"].item())
    path = tmp_path / "out" / f"{name}.png"
    call(name, d, path)
    assert_png(path)
    assert placeholder_text(captured[0]) is None


def test_prunability_nan_everywhere_figures(tmp_path, captured):
    """Prunability NaN for every model (e.g. every search failed): prunability_vs_gap is drawn."""
    table, _, _ = make_table()
    table["measure.prunability"] = np.nan
    path = tmp_path / "gap.png"
    measures.prunability_vs_gap(table, pd.DataFrame(columns=["measure", "target"]), TARGET, ["width", "depth"], path)
    assert_png(path)


def test_pruning_curves_prunability_nan_everywhere(tmp_path, captured):
    table, _, curves = make_table()
    table["measure.prunability"] = np.nan
    curves_figures.pruning_curves(curves, table, TARGET, 4, tmp_path / "a" / "curves.png")
    curves_figures.pruning_curves_all(curves, table, TARGET, tmp_path / "b" / "all.png")
    assert_png(tmp_path / "a" / "curves.png")
    assert all("no converged model has a finite prunability" in placeholder_text(fig) for fig in captured)


def test_pruning_curves_picked_model_without_curves(study, tmp_path, captured):
    # a model without stored curves is not drawn; three others are
    prunability = study["table"].set_index("model")["measure.prunability"]
    missing = curves_figures.pick_spread(prunability, 3)[1]
    curves = study["curves"][study["curves"]["model"] != missing]
    curves_figures.pruning_curves(curves, study["table"], TARGET, 3, tmp_path / "curves.png")
    assert_png(tmp_path / "curves.png")
    titles = panel_models(captured[0])
    assert len(titles) == 3 and curves_figures._two_lines(missing) not in titles


@pytest.fixture(scope="module")
def no_pruning_study(tmp_path_factory):
    """measures.families without pruning: no prunability, no curves, no sensitivity."""
    return build_study(tmp_path_factory.mktemp("no-pruning"), pruning=False)


@pytest.mark.parametrize("name, message", [
    ("tolerance_sensitivity", "no pruning curves"),
    ("prunability_vs_gap", "prunability was not computed"),
    ("pruning_curves", "no pruning curves"),
    ("pruning_curves_all", "no pruning curves"),
    ("size_scaling", "prunability was not computed"),
    ("prediction_mi_bars", "no mutual information between prunability and a baseline"),
])
def test_no_pruning_family_placeholders(name, message, no_pruning_study, tmp_path, captured):
    d = no_pruning_study
    assert d["curves"].empty and d["sensitivity"].empty and "measure.prunability" not in d["table"]
    call(name, d, tmp_path / "figure.png")
    assert_png(tmp_path / "figure.png")
    assert message in placeholder_text(captured[0])


@pytest.mark.parametrize("name", ["claims_figure", "tau_intervals", "psi_heatmap", "cmi_bars"])
def test_no_pruning_family_other_figures(name, no_pruning_study, tmp_path, drawn):
    """The other figures are drawn without the pruning family's measures."""
    call(name, no_pruning_study, tmp_path / "figure.png")
    assert placeholder_text(drawn[0]) is None
    text = " ".join(t.get_text() for ax in drawn[0].axes for t in ax.get_yticklabels())
    assert "prunability" not in text and "kept_count" not in text


def test_pruning_curves_without_curves_but_with_prunability(study, tmp_path, captured):
    curves_figures.pruning_curves(study["curves"].iloc[0:0], study["table"], TARGET, 4, tmp_path / "c.png")
    assert_png(tmp_path / "c.png")
    assert "no pruning curves" in placeholder_text(captured[0])


def test_claims_nothing_tested(tmp_path, captured):
    """A study with neither pruning nor norms: every verdict is 'not tested', every value NaN."""
    table, info, _ = make_table(pruning=False)
    info = info[info["family"] == "flatness"]
    counts = bootstrap_counts(N, RESAMPLES, 0)
    orientations = dict(zip(info["name"], info["orientation"]))
    summary, _ = summary_tables(table, orientations, TARGETS, AXES)
    summary = summary.merge(bootstrap_intervals(table, orientations, TARGETS, AXES, counts, LEVEL),
                            on=["measure", "target"])
    summary = flag_partial_grid(summary, N, 0, False, ["Psi", "Psi_low", "Psi_high"])
    frame = claims.claims_table(table, info, summary, f"gen.{TARGET}", counts, LEVEL, 0.5, 0.5)
    frame = roundtrip(frame, tmp_path, "claims")
    assert (frame["verdict"] == claims.NOT_TESTED).all()
    assert frame[["value", "ci_low", "ci_high"]].isna().all().all()
    out = tmp_path / "out" / "claims.png"
    answer.claims_figure(frame, LEVEL, out)
    assert_png(out)
    cells = captured[0].axes[0].tables[0].get_celld()
    n_rows = len(frame)
    assert [cells[(r, 3)].get_text().get_text() for r in range(1, n_rows + 1)] == ["—"] * n_rows
    grey = matplotlib.colors.to_rgba(style.VERDICT_COLOURS[claims.NOT_TESTED])
    assert all(cells[(r, 4)].get_facecolor() == grey for r in range(1, n_rows + 1))


def test_claims_empty_notes(study, tmp_path, drawn):
    """Notes read back from CSV as NaN (empty) are drawn as empty cells."""
    frame = study["claims"].copy()
    frame["note"] = np.nan
    answer.claims_figure(frame, LEVEL, tmp_path / "claims.png")
    cells = drawn[0].axes[0].tables[0].get_celld()
    assert all(cells[(r, 5)].get_text().get_text() == "" for r in range(1, len(frame) + 1))


def test_prunability_vs_gap_without_axes(study, tmp_path, drawn):
    """No grid axis: one colour, no legend; one axis: hue only."""
    for axes in ([], ["width"]):
        measures.prunability_vs_gap(study["table"], study["summary"], TARGET, axes, tmp_path / "gap.png")
    no_axis, one_axis = (fig.axes[0] for fig in drawn)
    assert no_axis.get_legend() is None
    assert labels(one_axis.get_legend().get_texts()) == [str(w) for w in WIDTHS]
    assert len(no_axis.collections[0].get_offsets()) == len(one_axis.collections[0].get_offsets()) == N


def test_pruning_curves_more_models_than_asked(study, tmp_path, drawn):
    """More models asked than the table has (3 here, one with a NaN prunability): one panel each of the 2 others."""
    table = study["table"].iloc[2:5].copy()
    table.loc[table.index[1], "measure.prunability"] = np.nan
    curves_figures.pruning_curves(study["curves"], table, TARGET, 20, tmp_path / "curves.png")
    titles = panel_models(drawn[0])
    assert sorted(titles) == sorted(curves_figures._two_lines(m) for m in table["model"].iloc[[0, 2]])


def test_cmi_bars_one_measure_all_nan(study, tmp_path, drawn):
    """NaN CMI for one measure only: the bars of the others are drawn."""
    cmi = study["cmi"].copy()
    cmi.loc[cmi["measure"] == "params", ["cmi_jiang", "cmi_careful"]] = np.nan
    answer.cmi_bars(cmi, study["summary"], study["measure_info"], TARGET, tmp_path / "cmi.png")
    assert placeholder_text(drawn[0]) is None


# --------------------------------------------------------------------------- orderings


def info_frame(rows) -> pd.DataFrame:
    return pd.DataFrame([{"name": n, "family": f, "orientation": 1} for n, f in rows])


def test_by_family_order():
    info = info_frame([
        ("sharp", "flatness"), ("zeta", "custom"), ("params", "norms"), ("prun", "pruning"), ("alpha", "aaa"),
        ("steps", "optimization"), ("l2", "norms"), ("kept", "pruning"), ("eig", "hessian"), ("beta", "custom"),
    ])
    # FAMILY_ORDER first, registry order inside a family, unknown families last in registry order
    assert style._by_family(info) == ["prun", "kept", "params", "l2", "sharp", "eig", "steps", "zeta", "alpha", "beta"]
    assert style._by_family(info.iloc[0:0]) == []


def test_by_family_ignores_the_index():
    info = info_frame([("b", "norms"), ("a", "pruning"), ("c", "norms")])
    info.index = [10, 3, 7]
    assert style._by_family(info) == ["a", "b", "c"]


def test_family_palette_order():
    info = info_frame([("x", "zz"), ("y", "norms"), ("z", "aa"), ("w", "pruning"), ("v", "norms")])
    palette = style._family_palette(info)
    assert list(palette) == ["pruning", "norms", "aa", "zz"]
    assert len(set(palette.values())) == 4


def test_pick_spread():
    values = pd.Series([0.5, np.nan, 0.1, 0.9, 0.3, 0.7], index=list("abcdef"))
    # sorted: c 0.1, e 0.3, a 0.5, f 0.7, d 0.9
    assert curves_figures.pick_spread(values, 3) == ["c", "a", "d"]
    assert curves_figures.pick_spread(values, 2) == ["c", "d"]
    assert curves_figures.pick_spread(values, 1) == ["c"]
    assert curves_figures.pick_spread(values, 5) == ["c", "e", "a", "f", "d"]
    assert curves_figures.pick_spread(values, 50) == ["c", "e", "a", "f", "d"]
    assert curves_figures.pick_spread(pd.Series([np.nan, np.nan], index=["a", "b"]), 3) == []
    assert curves_figures.pick_spread(pd.Series([], dtype=float), 3) == []
    picked = curves_figures.pick_spread(pd.Series(np.arange(10.0)), 4)  # positions 0, 3, 6, 9
    assert picked == [0, 3, 6, 9]


def test_two_lines():
    assert curves_figures._two_lines("depth~2/width~1/batchnorm~True/dropout~0.0") == "depth=2, width=1\nbatchnorm=True, dropout=0.0"
    assert curves_figures._two_lines("width~8/depth~2/lr~0.1") == "width=8, depth=2\nlr=0.1"


def test_wrap():
    assert answer._wrap("a b c", 3) == "a b\nc"
    assert answer._wrap(float("nan"), 10) == ""


def test_tau_intervals_sorted_by_tau(study, tmp_path, drawn):
    answer.tau_intervals(study["summary"], study["measure_info"], TARGET, tmp_path / "tau.png")
    rows = study["summary"][study["summary"]["target"] == f"gen.{TARGET}"]
    expected = rows.sort_values("tau_a")["measure"].tolist()
    left, right = drawn[0].axes[:2]
    assert labels(left.get_yticklabels()) == readable(expected)
    assert left.get_xlim() == (-1, 1) and right.get_xlim() == (-1, 1)
    assert expected == ["pacbayes_flatness", "kept_count", "params", "prunability"]  # not the registry order
    assert "8 models" in drawn[0].get_suptitle()
    # legend: the study's families in FAMILY_ORDER; each measure in its family's colour
    assert labels(right.get_legend().get_texts()) == ["pruning", "norms", "flatness"]
    palette = style._family_palette(study["measure_info"])
    family = dict(zip(study["measure_info"]["name"], study["measure_info"]["family"]))
    for y, measure in enumerate(expected):
        (line,) = [line for line in left.get_lines() if list(line.get_ydata()) == [y, y]]
        assert matplotlib.colors.to_rgb(line.get_color()) == pytest.approx(palette[family[measure]])
    assert right.get_title() == ""  # full grid: no partial-grid note


def test_tau_intervals_partial_grid_title(partial_study, tmp_path, drawn):
    answer.tau_intervals(partial_study["summary"], partial_study["measure_info"], TARGET, tmp_path / "tau.png")
    assert drawn[0].axes[1].get_title() == f"partial grid for {len(BY_FAMILY)} of {len(BY_FAMILY)} measures"
    assert "7 models" in drawn[0].get_suptitle()


def test_tau_intervals_unknown_measure_and_family(study, tmp_path, drawn):
    """A measure missing from measure_info is drawn in grey; an unknown family joins the legend last."""
    summary = study["summary"].copy()
    extra = summary[summary["measure"] == "params"].assign(measure="mystery")
    summary = pd.concat([summary, extra], ignore_index=True)
    info = pd.concat([study["measure_info"], info_frame([("zz_measure", "custom")])], ignore_index=True)
    answer.tau_intervals(summary, info, TARGET, tmp_path / "tau.png")
    names = labels(drawn[0].axes[0].get_yticklabels())
    (line,) = [line for line in drawn[0].axes[0].get_lines() if list(line.get_ydata()) == [names.index("mystery")] * 2]
    assert line.get_color() == "grey"
    assert labels(drawn[0].axes[1].get_legend().get_texts()) == ["pruning", "norms", "flatness", "custom"]


def test_tau_figure_grows_with_measures(study, tmp_path):
    summary = study["summary"]
    target_rows = summary[summary["target"] == f"gen.{TARGET}"]
    many = pd.concat([target_rows.assign(measure=lambda f, i=i: f["measure"] + f"_{i}") for i in range(3)],
                     ignore_index=True)
    answer.tau_intervals(target_rows.iloc[:2], study["measure_info"], TARGET, tmp_path / "few" / "tau.png")
    answer.tau_intervals(many, study["measure_info"], TARGET, tmp_path / "many" / "tau.png")
    few_h, few_w = assert_png(tmp_path / "few" / "tau.png")
    many_h, many_w = assert_png(tmp_path / "many" / "tau.png")
    # 10 more rows at 0.22 in each, 130 dpi: about 290 pixels taller
    assert many_h > few_h + 200
    assert abs(many_w - few_w) < 0.2 * few_w


def test_psi_heatmap_order(study, tmp_path, drawn):
    answer.psi_heatmap(study["granulated"], study["summary"], study["measure_info"], TARGET, tmp_path / "psi.png")
    ax = titled_axes(drawn[0])[0]
    assert labels(ax.get_yticklabels()) == readable(BY_FAMILY)
    assert labels(ax.get_xticklabels()) == ["width", "depth", "lr", "Ψ (mean)"]
    assert [t.get_fontweight() for t in ax.get_yticklabels()] == ["bold", "normal", "normal", "normal"]
    # no "-0.00" in the annotations
    assert not any(t.get_text() == "-0.00" for t in ax.texts)


def test_psi_heatmap_values(study, tmp_path, drawn):
    """The annotations are psi per axis and Psi from the summary."""
    answer.psi_heatmap(study["granulated"], study["summary"], study["measure_info"], TARGET, tmp_path / "psi.png")
    ax = titled_axes(drawn[0])[0]
    texts = [t.get_text() for t in ax.texts]
    g = study["granulated"][study["granulated"]["target"] == f"gen.{TARGET}"]
    s = study["summary"][study["summary"]["target"] == f"gen.{TARGET}"].set_index("measure")
    expected = []
    for measure in BY_FAMILY:
        psi = g[g["measure"] == measure].set_index("axis")["psi"]
        row = [psi[a] for a in AXES] + [s.loc[measure, "Psi"]]
        expected += [f"{round(v, 12) + 0.0:.2f}" for v in row]
    assert texts == expected


def test_psi_heatmap_skips_measures_missing_from_info(study, tmp_path, drawn):
    info = study["measure_info"][study["measure_info"]["name"] != "params"]
    answer.psi_heatmap(study["granulated"], study["summary"], info, TARGET, tmp_path / "psi.png")
    assert labels(titled_axes(drawn[0])[0].get_yticklabels()) == readable([m for m in BY_FAMILY if m != "params"])


def bar_widths(ax) -> dict:
    """y centre (rounded) -> sorted widths of the horizontal bars there (highlight bands left out)."""
    bars = {}
    for patch in ax.patches:
        # seaborn adds empty rectangles for its legend: they have no height
        if patch.get_gid() != "highlight" and isinstance(patch, matplotlib.patches.Rectangle) and patch.get_height():
            bars.setdefault(round(patch.get_y() + patch.get_height() / 2), []).append(patch.get_width())
    return {y: sorted(widths) for y, widths in bars.items()}


def test_cmi_bars_order(study, tmp_path, drawn):
    answer.cmi_bars(study["cmi"], study["summary"], study["measure_info"], TARGET, tmp_path / "cmi.png")
    rows = study["cmi"][study["cmi"]["target"] == f"gen.{TARGET}"]
    expected = rows.sort_values("cmi_jiang", ascending=False)["measure"].tolist()
    assert expected != study["measure_info"]["name"].tolist()
    ax = drawn[0].axes[0]
    assert labels(ax.get_yticklabels()) == readable(expected)
    assert labels(ax.get_legend().get_texts()) == ["Jiang et al. (PGDL code)", "careful variant"]
    # every tau is positive against the acc gap here: the bars are CMI itself
    by_measure = rows.set_index("measure")
    assert bar_widths(ax) == {y: pytest.approx(sorted(by_measure.loc[m, ["cmi_jiang", "cmi_careful"]]))
                              for y, m in enumerate(expected)}
    (band,) = highlighted(ax)
    assert band.get_y() + band.get_height() / 2 == pytest.approx(expected.index("prunability"))


def test_cmi_bars_signed_by_tau(study, tmp_path, drawn):
    """CMI has no direction: a measure with a negative tau gets bars to the left, sorted last."""
    summary = study["summary"].copy()
    reversed_row = (summary["measure"] == "kept_count") & (summary["target"] == f"gen.{TARGET}")
    summary.loc[reversed_row, "tau_a"] *= -1
    answer.cmi_bars(study["cmi"], summary, study["measure_info"], TARGET, tmp_path / "cmi.png")
    ax = drawn[0].axes[0]
    names = labels(ax.get_yticklabels())
    assert names[-1] == "κ (kept count)"
    rows = study["cmi"][study["cmi"]["target"] == f"gen.{TARGET}"].set_index("measure")
    widths = bar_widths(ax)
    assert widths[len(names) - 1] == pytest.approx(sorted(-rows.loc["kept_count", ["cmi_jiang", "cmi_careful"]]))
    assert all(w >= 0 for y, ws in widths.items() if y != len(names) - 1 for w in ws)
    assert "sign(τ)" in ax.get_xlabel()


def test_cmi_bars_careful_only(study, tmp_path, drawn):
    """One grid axis: Jiang's algorithm (pairs of axes) has no value; the careful variant is drawn alone, sorted."""
    cmi = study["cmi"].assign(cmi_jiang=np.nan)
    answer.cmi_bars(cmi, study["summary"], study["measure_info"], TARGET, tmp_path / "cmi.png")
    ax = drawn[0].axes[0]
    assert labels(ax.get_legend().get_texts()) == ["careful variant"]
    rows = cmi[cmi["target"] == f"gen.{TARGET}"]
    assert labels(ax.get_yticklabels()) == readable(rows.sort_values("cmi_careful", ascending=False)["measure"])


def k6_rows(study) -> pd.DataFrame:
    """Prunability's row of the MI table against the baselines (every measure outside pruning)."""
    mi = study["mi"]
    baselines = study["measure_info"].loc[study["measure_info"]["family"] != "pruning", "name"]
    return mi[(mi["other"] == "prunability") & mi["base"].isin(baselines)]


def test_prediction_mi_bars(study, tmp_path, drawn):
    answer.prediction_mi_bars(study["mi"], study["measure_info"], TARGET, MI_THRESHOLD, tmp_path / "mi.png")
    left, right = drawn[0].axes[:2]
    rows = k6_rows(study).sort_values("mi", ascending=False)
    assert len(rows) == 2  # params and pacbayes_flatness; kept_count is pruning's own
    assert labels(left.get_yticklabels()) == readable(rows["base"])
    assert [bar.get_width() for bar in left.patches] == pytest.approx(rows["mi"].tolist())
    assert [bar.get_width() for bar in right.patches] == pytest.approx(rows["cmi_given_base"].tolist())
    assert left.get_ylim() == (len(rows) - 0.5, -0.5)  # the largest at the top
    # the median line is the claims table's K6 statistic; the threshold line is the setting
    claim = study["claims"][(study["claims"]["claim"] == "K6") & study["claims"]["statistic"].str.startswith("median")]
    lines = {line.get_linestyle(): line.get_xdata()[0] for line in left.get_lines()}
    assert lines["--"] == pytest.approx(claim["value"].item()) == pytest.approx(rows["mi"].median())
    assert lines[":"] == MI_THRESHOLD
    assert labels(left.get_legend().get_texts()) == [f"median over baselines {rows['mi'].median():.2f}",
                                                     f"claims threshold {MI_THRESHOLD:g}", "norms family",
                                                     "flatness family"]


def test_prediction_mi_bars_measure_missing_from_info(study, tmp_path, drawn):
    """A baseline of the MI table that measure_info lacks is left out."""
    info = study["measure_info"][study["measure_info"]["name"] != "params"]
    answer.prediction_mi_bars(study["mi"], info, TARGET, MI_THRESHOLD, tmp_path / "mi.png")
    assert labels(drawn[0].axes[0].get_yticklabels()) == readable(["pacbayes_flatness"])


def test_claims_figure_cells(study, tmp_path, drawn):
    answer.claims_figure(study["claims"], LEVEL, tmp_path / "claims.png")
    cells = drawn[0].axes[0].tables[0].get_celld()
    assert cells[(0, 3)].get_text().get_text() == "value [95% interval]"
    frame = study["claims"]
    for r, row in enumerate(frame.itertuples(), start=1):
        assert cells[(r, 0)].get_text().get_text() == row.claim
        colour = matplotlib.colors.to_rgba(style.VERDICT_COLOURS[row.verdict])
        assert cells[(r, 4)].get_facecolor() == colour
        value = cells[(r, 3)].get_text().get_text()
        if np.isfinite(row.value):
            assert value.startswith(f"{row.value:.2f}")
            assert ("[" in value) == bool(np.isfinite(row.ci_low))
        else:
            assert value == "—"
    # every verdict occurs, so every colour is checked
    assert set(frame["verdict"]) == set(style.VERDICT_COLOURS)


def test_tolerance_sensitivity_sorted(study, tmp_path, drawn):
    shuffled = study["sensitivity"].sample(frac=1.0, random_state=3)
    answer.tolerance_sensitivity(shuffled, TARGET, REL_TOL, tmp_path / "tol.png")
    ax = drawn[0].axes[0]
    tau_line = ax.get_lines()[0]
    assert list(tau_line.get_xdata()) == REL_TOLS
    rows = study["sensitivity"][study["sensitivity"]["target"] == f"gen.{TARGET}"].sort_values("rel_tol")
    np.testing.assert_allclose(tau_line.get_ydata(), rows["tau_a"])
    assert ax.get_xscale() == "log"
    assert any(f"ε = {REL_TOL:g}" in t for t in labels(ax.get_legend().get_texts()))


def test_prunability_vs_gap_points(partial_study, tmp_path, drawn):
    measures.prunability_vs_gap(partial_study["table"], partial_study["summary"], TARGET, ["width", "depth"],
                             tmp_path / "gap.png")
    ax = drawn[0].axes[0]
    row = partial_study["summary"].set_index(["measure", "target"]).loc[("prunability", f"gen.{TARGET}")]
    assert ax.get_title() == ("7 converged models (1 not converged, not shown)\nprunability's "
                              f"τ {row.tau_a:.2f} [{row.tau_a_low:.2f}, {row.tau_a_high:.2f}], 7 models")
    assert len(ax.collections[0].get_offsets()) == N - 1


# --------------------------------------------------------------------------- the seed noise floor on the tau figure


def build_seed_study(folder: Path, seeds=(0, 1)) -> dict:
    """The 8-model grid trained once per seed. Seed 0 has make_table's gaps; seed s > 0
    swaps the gaps of models 2s - 2 and 2s - 1 (seed noise). Summary, replicates and seed
    oracle as the statistics rule makes them, round-tripped through CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    base, info, _ = make_table()
    parts = []
    for seed in seeds:
        part = base.assign(**{"hp.seed": seed}, model=base["model"] + f"/seed~{seed}")
        if seed:
            gap = part["gen.acc_gap"].to_numpy(copy=True)
            i, j = 2 * seed - 2, 2 * seed - 1
            gap[[i, j]] = gap[[j, i]]
            part["gen.acc_gap"] = gap
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    orientations = dict(zip(info["name"], info["orientation"]))
    counts = bootstrap_counts(len(table), RESAMPLES, 0)
    summary, _ = summary_tables(table, orientations, TARGETS, AXES)
    summary = summary.merge(bootstrap_intervals(table, orientations, TARGETS, AXES, counts, LEVEL),
                            on=["measure", "target"])
    summary = flag_partial_grid(summary, N * len(seeds), 0, False, ["Psi", "Psi_low", "Psi_high"])
    grid = {"width": list(WIDTHS), "depth": list(DEPTHS), "lr": list(LRS), "seed": list(seeds)}
    axis, replicates, _, oracle = seed_noise_floor(table, orientations, TARGETS, grid,
                                                         ["width", "depth", "lr"], "seed")
    assert axis == "seed"
    frames = dict(table=table, measure_info=info, summary=summary, replicates=replicates, seed_oracle=oracle)
    return {name: roundtrip(frame, folder, name) for name, frame in frames.items()}


def dashed_x(ax) -> list[float]:
    """x of the dashed vertical lines (the seed oracle)."""
    return [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"]


def test_tau_intervals_seed_oracle_and_each_seed(tmp_path, drawn):
    d = build_seed_study(tmp_path)
    answer.tau_intervals(d["summary"], d["measure_info"], TARGET, tmp_path / "tau.png", d["replicates"], d["seed_oracle"])
    left, right = drawn[0].axes[:2]
    (oracle,) = d["seed_oracle"][d["seed_oracle"]["target"] == f"gen.{TARGET}"].itertuples()
    assert 0 < oracle.tau_a < 1  # the swap makes the two seeds disagree
    assert dashed_x(left) == pytest.approx([oracle.tau_a])
    assert dashed_x(right) == pytest.approx([oracle.Psi])
    assert labels(left.get_legend().get_texts()) == [
        f"seed oracle (τ {oracle.tau_a:.2f}, Ψ {oracle.Psi:.2f})", "each seed's own value"]
    assert not oracle_bands(left)  # one pair of seeds: no band
    # each measure's row carries its two per-seed values as diamonds
    measure_of = {label: name for name, label in style.measure_labels(d["measure_info"]).items()}
    names = [measure_of[label] for label in labels(left.get_yticklabels())]
    per_seed = d["replicates"][d["replicates"]["target"] == f"gen.{TARGET}"]
    for ax, column in ((left, "tau_a"), (right, "Psi")):
        assert len(ax.collections) == len(names)
        for collection in ax.collections:
            points = collection.get_offsets()
            (row,) = set(points[:, 1])
            expected = per_seed.loc[per_seed["measure"] == names[int(row)], column]
            assert sorted(points[:, 0]) == pytest.approx(sorted(expected))


def test_tau_intervals_seed_oracle_band_with_three_seeds(tmp_path, drawn):
    d = build_seed_study(tmp_path, seeds=(0, 1, 2))
    answer.tau_intervals(d["summary"], d["measure_info"], TARGET, tmp_path / "tau.png", d["replicates"], d["seed_oracle"])
    left = drawn[0].axes[0]
    oracle = d["seed_oracle"][d["seed_oracle"]["target"] == f"gen.{TARGET}"]
    pairs = oracle[oracle["pair"] != "mean"]["tau_a"]
    assert len(pairs) == 3 and pairs.nunique() > 1
    # the line at the mean of the three pairs (the "mean" row), the band over their range
    assert dashed_x(left) == pytest.approx([oracle[oracle["pair"] == "mean"]["tau_a"].item()])
    (band,) = oracle_bands(left)
    assert (band.get_x(), band.get_x() + band.get_width()) == pytest.approx((pairs.min(), pairs.max()))
    assert "mean and range of 3 pairs" in labels(left.get_legend().get_texts())[0]


def test_tau_intervals_without_a_replicate_axis_is_as_before(study, tmp_path, drawn):
    """Empty replicates / seed_oracle frames (header-only CSVs) draw the figure of no seeds."""
    orientations = dict(zip(study["measure_info"]["name"], study["measure_info"]["orientation"]))
    grid = {"width": list(WIDTHS), "depth": list(DEPTHS), "lr": list(LRS)}
    axis, replicates, _, oracle = seed_noise_floor(study["table"], orientations, TARGETS, grid,
                                                         ["width", "depth", "lr"], "seed")
    assert axis is None
    replicates, oracle = roundtrip(replicates, tmp_path, "replicates"), roundtrip(oracle, tmp_path, "seed_oracle")
    answer.tau_intervals(study["summary"], study["measure_info"], TARGET, tmp_path / "a.png", replicates, oracle)
    answer.tau_intervals(study["summary"], study["measure_info"], TARGET, tmp_path / "b.png")
    with_frames, without = drawn
    for a, b in zip(with_frames.axes[:2], without.axes[:2]):
        assert not dashed_x(a) and not a.collections and not oracle_bands(a)
        assert [line.get_xydata().tolist() for line in a.get_lines()] == [line.get_xydata().tolist() for line in b.get_lines()]
    assert with_frames.axes[0].get_legend() is None


def test_tau_intervals_nan_oracle_is_not_drawn(tmp_path, drawn):
    """A pair without a tau (e.g. every model of one seed unconverged): no line, no legend entry."""
    d = build_seed_study(tmp_path)
    oracle = d["seed_oracle"].assign(tau_a=np.nan)
    answer.tau_intervals(d["summary"], d["measure_info"], TARGET, tmp_path / "tau.png", d["replicates"], oracle)
    left, right = drawn[0].axes[:2]
    assert not dashed_x(left) and len(dashed_x(right)) == 1
    assert labels(left.get_legend().get_texts())[0].startswith("seed oracle (Ψ ")


# --------------------------------------------------------------------------- size scaling (K4)


def panel_text(ax) -> str | None:
    return ax.texts[0].get_text() if ax.texts else None


def line_points(ax) -> set:
    """Each line of a panel as a tuple of its (x, y) points."""
    return {tuple(map(tuple, line.get_xydata().tolist())) for line in ax.get_lines()}


def expected_lines(table: pd.DataFrame, varied: str, size: str, measure: str) -> set:
    """The models that share every hp column but ``varied``, as (size, measure) points in size order."""
    used = table[table["is.converged"] & np.isfinite(table[measure])]
    others = [c for c in table.columns if c.startswith("hp.") and c != varied]
    return {tuple(map(tuple, g.sort_values(size)[[size, measure]].to_numpy(float).tolist()))
            for _, g in used.groupby(others)}


def test_size_scaling_lines(study, tmp_path, drawn):
    measures.size_scaling(study["table"], tmp_path / "size.png")
    width_prun, width_kept, depth_prun, depth_kept = drawn[0].axes[:4]
    table = study["table"]
    # width row: one line per (depth, lr), 4 lines of the 2 widths; depth row: per (width, lr)
    for ax, varied, measure in ((width_prun, "hp.width", "measure.prunability"),
                                (width_kept, "hp.width", "measure.kept_count"),
                                (depth_prun, "hp.depth", "measure.prunability"),
                                (depth_kept, "hp.depth", "measure.kept_count")):
        assert panel_text(ax) is None
        assert line_points(ax) == expected_lines(table, varied, "train.n_prunable", measure)
        assert len(ax.get_lines()) == 4
        assert ax.get_xscale() == "log" and ax.get_xlabel().startswith("|P|")
    assert width_kept.get_yscale() == "log" and width_prun.get_yscale() == "linear"
    # the width row is coloured by depth, the depth row by width
    assert width_kept.get_legend().get_title().get_text() == "depth"
    assert labels(width_kept.get_legend().get_texts()) == [str(d) for d in DEPTHS]
    assert depth_kept.get_legend().get_title().get_text() == "width"
    palette = dict(zip(DEPTHS, matplotlib.colors.to_rgba_array(
        [h.get_color() for h in width_kept.get_legend().legend_handles])))
    for line in width_prun.get_lines():
        x = line.get_xdata()[0]
        depth = table.loc[table["train.n_prunable"] == x, "hp.depth"].iloc[0]
        assert matplotlib.colors.to_rgb(line.get_color()) == pytest.approx(tuple(palette[depth][:3]))


def test_size_scaling_leaves_out_unconverged_and_nan(partial_study, tmp_path, drawn):
    table = partial_study["table"].copy()  # model 5 not converged
    table.loc[0, "measure.kept_count"] = np.nan
    measures.size_scaling(table, tmp_path / "size.png")
    width_prun, width_kept = drawn[0].axes[:2]
    assert sum(len(line.get_xdata()) for line in width_prun.get_lines()) == N - 1
    assert sum(len(line.get_xdata()) for line in width_kept.get_lines()) == N - 2
    # a group left with one model is a point, not a line: still drawn
    assert line_points(width_prun) == expected_lines(table, "hp.width", "train.n_prunable", "measure.prunability")


def test_size_scaling_grid_without_a_depth_axis(study, tmp_path, drawn):
    table = study["table"][study["table"]["hp.depth"] == DEPTHS[0]]
    measures.size_scaling(table, tmp_path / "size.png")
    width_prun, width_kept, depth_prun, depth_kept = drawn[0].axes[:4]
    assert len(width_prun.get_lines()) == 2  # one per lr
    for ax in (depth_prun, depth_kept):
        assert panel_text(ax) == "the grid has no depth axis with two or more values" and not ax.get_lines()
    # the width row, without a second size axis, is coloured by the next varying axis
    assert width_kept.get_legend().get_title().get_text() == "lr"


def test_size_scaling_no_size_axis_at_all(study, tmp_path, captured):
    table = study["table"][(study["table"]["hp.depth"] == DEPTHS[0]) & (study["table"]["hp.width"] == WIDTHS[0])]
    measures.size_scaling(table, tmp_path / "size.png")
    assert_png(tmp_path / "size.png")
    texts = [panel_text(ax) for ax in captured[0].axes[:4]]
    assert texts == ["the grid has no width axis with two or more values"] * 2 + [
        "the grid has no depth axis with two or more values"] * 2


def test_size_scaling_prunability_nan_everywhere(tmp_path, drawn):
    table, _, _ = make_table()
    table["measure.prunability"] = np.nan
    measures.size_scaling(table, tmp_path / "size.png")
    width_prun, width_kept, depth_prun, _ = drawn[0].axes[:4]
    assert panel_text(width_prun) == panel_text(depth_prun) == "no converged model with a finite value"
    assert len(width_kept.get_lines()) == 4


def test_size_scaling_without_kept_count(tmp_path, drawn):
    table, _, _ = make_table()
    measures.size_scaling(table.drop(columns="measure.kept_count"), tmp_path / "size.png")
    assert panel_text(drawn[0].axes[1]) == "kept_count was not computed"
    assert len(drawn[0].axes[0].get_lines()) == 4


@pytest.mark.parametrize("old_results", ["no column", "all NaN"])
def test_size_scaling_falls_back_to_all_parameters(old_results, tmp_path, drawn):
    table, _, _ = make_table()
    if old_results == "no column":
        table = table.drop(columns="train.n_prunable")
    else:
        table["train.n_prunable"] = np.nan
    measures.size_scaling(table, tmp_path / "size.png")
    ax = drawn[0].axes[0]
    assert "all parameters" in ax.get_xlabel()
    assert line_points(ax) == expected_lines(table, "hp.width", "train.n_parameters", "measure.prunability")


# --------------------------------------------------------------------------- double descent


def sweep_study():
    """Four widths x two seeds; the test loss peaks at width 4; params is undefined for
    one model, so the best baseline must come from the measures defined for all eight."""
    widths = [2, 4, 8, 16]
    loss = {2: 0.5, 4: 1.2, 8: 0.9, 16: 0.6}
    table = pd.DataFrame([{"model": f"w{w}s{s}", "hp.width": w, "hp.seed": s, "gen.train_acc": 0.8 if w == 2 else 1.0,
                           "gen.test_loss": loss[w] + 0.01 * s, "gen.test_error": loss[w] / 4,
                           "measure.prunability": loss[w] / 2 + 0.001 * s, "measure.kept_count": 100.0 * w,
                           "train.n_prunable": 120.0 * w, "measure.params": loss[w] + 0.01 * s,
                           "measure.pacbayes_flatness": loss[w] - 0.3 * s, "is.converged": True}
                          for w in widths for s in (0, 1)])
    table.loc[0, "measure.params"] = np.nan
    info = pd.DataFrame({"name": ["prunability", "kept_count", "params", "pacbayes_flatness"],
                         "family": ["pruning", "pruning", "norms", "flatness"], "orientation": [1, 1, 1, 1]})
    counts = bootstrap_counts(len(table), 50, 0)
    correlations = double_descent.sweep_correlations(
        table, dict(zip(info["name"], info["orientation"])), ["gen.test_loss", "gen.test_error"], counts, LEVEL)
    return table, info, correlations


def test_double_descent_figures(tmp_path, captured):
    table, info, correlations = sweep_study()
    means = double_descent.sweep_means(table, "width")
    threshold = double_descent.interpolation_threshold(means, "width", 0.01)
    assert threshold == 4
    double_descent_figures.double_descent_curves(table, means, "width", threshold, tmp_path / "a" / "curves.png")
    double_descent_figures.double_descent_scatter(table, correlations, info, "width", tmp_path / "b" / "scatter.png")
    assert_png(tmp_path / "a" / "curves.png")
    assert_png(tmp_path / "b" / "scatter.png")
    curves, scatter = captured
    panels = titled_axes(curves)
    assert [ax.get_title() for ax in panels] == list(double_descent.CURVE_COLUMNS.values())
    # effective dimensionality is not in the table: its panel says so; every other panel
    # marks the threshold at width 4 on a log width axis
    assert [t.get_text() for t in panels[-1].texts] == ["not computed"]
    for ax in panels[:-1]:
        assert ax.get_xscale() == "log"
        assert any(list(line.get_xdata()) == [4, 4] for line in ax.get_lines())
    titles = [ax.get_title() for ax in titled_axes(scatter)]
    # params (tau 1 over 7 models) is passed over for pacbayes_flatness (8 models)
    by = correlations[correlations["target"] == "gen.test_loss"].set_index("measure")
    assert (by.loc["params", "tau_a"], by.loc["params", "n_used"]) == (1.0, 7)
    assert by.loc["pacbayes_flatness", "tau_a"] < 1.0
    assert titles[0].startswith("prunability (8 models)\nτ ")
    assert titles[1].startswith("best baseline: pacbayes_flatness (8 models)\nτ ")


def test_double_descent_curves_without_a_threshold(tmp_path, drawn):
    table, _, _ = sweep_study()
    table["gen.train_acc"] = 0.5
    means = double_descent.sweep_means(table, "width")
    assert double_descent.interpolation_threshold(means, "width", 0.01) is None
    double_descent_figures.double_descent_curves(table, means, "width", None, tmp_path / "curves.png")
    legend = drawn[0].axes[-1].get_legend()
    assert "no width reaches the interpolation threshold" in [t.get_text() for t in legend.get_texts()]


def test_double_descent_scatter_without_measures(tmp_path, captured):
    table, info, correlations = sweep_study()
    table = table.drop(columns=[c for c in table if c.startswith("measure.")])
    double_descent_figures.double_descent_scatter(table, correlations, info, "width", tmp_path / "scatter.png")
    assert placeholder_text(captured[0]) == "neither prunability nor a baseline was computed"


# --------------------------------------------------------------------------- readable names, threshold, highlight


@pytest.mark.parametrize("name, equation, label", [
    ("log_prod_of_spec_over_margin", "31", "log product of spectral over margin (eq. 31)"),
    ("log_prod_of_spec_fft", "32 (FFT)", "log product of spectral (FFT) (eq. 32)"),
    ("pacbayes_mag_flatness", 61.0, "PAC-Bayes magnitude-aware flatness (eq. 61)"),  # read back from CSV as a float
    ("kept_count", float("nan"), "κ (kept count)"),
    ("prunability", "", "prunability"),
    ("steps_ce_0.1_to_0.01", None, "steps CE 0.1 to 0.01"),
])
def test_measure_label(name, equation, label):
    assert style.measure_label(name, equation) == label


def test_measure_labels_without_an_equation_column():
    assert style.measure_labels(INFO.drop(columns="equation"))["params"] == "parameter count"


def test_tau_intervals_threshold_and_highlight(study, tmp_path, drawn):
    call("tau_intervals", study, tmp_path / "tau.png")
    left, right = drawn[0].axes[:2]
    names = study["summary"][study["summary"]["target"] == f"gen.{TARGET}"].sort_values("tau_a")["measure"].tolist()
    for ax in (left, right):
        dotted = [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert dotted == [TAU_THRESHOLD]
        (band,) = highlighted(ax)
        assert band.get_y() + band.get_height() / 2 == pytest.approx(names.index("prunability"))
    assert labels(left.get_legend().get_texts()) == [f"claims threshold {TAU_THRESHOLD:g}"]
    weights = {t.get_text(): t.get_fontweight() for t in left.get_yticklabels()}
    assert weights.pop("prunability") == "bold" and set(weights.values()) == {"normal"}


# --------------------------------------------------------------------------- pruning curves of every model


def test_pruning_curves_all(partial_study, tmp_path, drawn):
    """One panel per converged model (model 5 is not), in increasing prunability, each with
    the model's tolerance, its prunability and both in the title."""
    d = partial_study
    call("pruning_curves_all", d, tmp_path / "all.png")
    table = d["table"][d["table"]["is.converged"]].set_index("model")
    models = table["measure.prunability"].sort_values(kind="stable").index.tolist()
    assert len(models) == N - 1
    assert panel_models(drawn[0]) == [curves_figures._two_lines(m) for m in models]
    curves = d["curves"]
    for ax, model in zip(titled_axes(drawn[0]), models):
        prunability = table.loc[model, "measure.prunability"]
        assert ax.get_title().endswith(f"prunability {prunability:.3f}, {TARGET} {table.loc[model, f'gen.{TARGET}']:.3g}")
        bound = curves.loc[curves["model"] == model, "bound"].iloc[0]
        horizontal = [line.get_ydata()[0] for line in ax.get_lines() if list(line.get_xdata()) == [0, 1]]
        vertical = [line.get_xdata()[0] for line in ax.get_lines() if list(line.get_ydata()) == [0, 1]]
        assert horizontal == pytest.approx([bound]) and vertical == pytest.approx([prunability])
        assert ax.get_xlim() == pytest.approx((min(curves["alpha"]) - 0.02, 1.02))  # one range for all panels
    legend = drawn[0].legends[0]
    assert labels(legend.get_texts())[:3] == ["global magnitude pruning", "random mask (seed 0)",
                                              "loss tolerance (1 + ε) L₀ + δ"]
    assert legend.get_title().get_text() == f"Pruning curves of all {N - 1} converged models, in increasing prunability"


# --------------------------------------------------------------------------- training curves


def test_training_curves(partial_study, tmp_path, drawn):
    """Four panels of one line per model; model 5 (not converged) black and dashed; the CE target on the training loss."""
    call("training_curves", partial_study, tmp_path / "training.png")
    panels = titled_axes(drawn[0])
    assert [ax.get_title().split(" (")[0] for ax in panels] == ["training loss", "test loss", "training accuracy",
                                                              "test accuracy"]
    training = partial_study["training"]
    unconverged = model_name(WIDTHS[1], DEPTHS[0], LRS[1])  # model 5
    for ax, column in zip(panels, ("train_loss", "test_loss", "train_acc", "test_acc")):
        curves = [line for line in ax.get_lines() if line.get_linestyle() != ":"]
        assert len(curves) == N
        dashed = [line for line in curves if line.get_linestyle() == "--"]
        (line,) = dashed
        assert list(line.get_ydata()) == training.loc[training["model"] == unconverged, column].tolist()
    target_lines = [[line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"] for ax in panels]
    assert target_lines == [[CE_TARGET], [], [], []]
    assert [ax.get_yscale() for ax in panels] == ["log", "log", "linear", "linear"]
    legend = drawn[0].legends[0]
    assert legend.get_title().get_text() == "width"  # the first axis that varies
    assert labels(legend.get_texts()) == [str(w) for w in WIDTHS] + ["not converged (1)", f"CE target {CE_TARGET:g}"]
    assert "7 converged, 1 not" in drawn[0].get_suptitle()


def test_training_curves_accuracy_axis_keeps_every_final_value(study, tmp_path, drawn):
    call("training_curves", study, tmp_path / "training.png")
    test_acc = titled_axes(drawn[0])[3]
    final = study["training"].groupby("model")["test_acc"].last()
    assert test_acc.get_ylim()[0] <= final.min() and test_acc.get_ylim()[1] >= 1


def test_training_curves_budget_has_no_target(study, tmp_path, drawn):
    training_figures.training_curves(study["training"], study["table"], ["width"], "budget", CE_TARGET, tmp_path / "t.png")
    assert not [line for ax in drawn[0].axes for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert "fixed budget" in drawn[0].get_suptitle()


def test_training_curves_without_curves(study, tmp_path, captured):
    training_figures.training_curves(study["training"].iloc[0:0], study["table"], ["width"], "ce_target", CE_TARGET,
                          tmp_path / "t.png")
    assert_png(tmp_path / "t.png")
    assert "no training curves" in placeholder_text(captured[0])


# --------------------------------------------------------------------------- the main measures against the gap


def test_measures_vs_gap(partial_study, tmp_path, drawn):
    d = partial_study
    call("measures_vs_gap", d, tmp_path / "m.png")
    panels = drawn[0].axes[:5]
    summary = d["summary"].set_index(["measure", "target"])

    def tau(measure):
        row = summary.loc[(measure, f"gen.{TARGET}")]
        return f"τ {row.tau_a:.2f} [{row.tau_a_low:.2f}, {row.tau_a_high:.2f}], {N - 1} models"

    titles = [ax.get_title() for ax in panels]
    assert titles[:4] == [f"prunability\n{tau('prunability')}", f"κ (kept count)\n{tau('kept_count')}",
                          f"best norms measure: parameter count\n{tau('params')}",
                          f"best flatness measure: PAC-Bayes flatness\n{tau('pacbayes_flatness')}"]
    assert titles[4] == "effective dimensionality" and panels[4].texts[0].get_text() == "not computed in this study"
    table = d["table"][d["table"]["is.converged"]]
    for ax, measure in zip(panels[:4], ("prunability", "kept_count", "params", "pacbayes_flatness")):
        assert sorted(map(tuple, ax.collections[0].get_offsets().tolist())) == sorted(
            zip(table[f"measure.{measure}"], table[f"gen.{TARGET}"]))
    assert panels[0].title.get_fontweight() == "bold"


def test_measures_vs_gap_without_pruning(no_pruning_study, tmp_path, drawn):
    call("measures_vs_gap", no_pruning_study, tmp_path / "m.png")
    assert [ax.texts[0].get_text() for ax in drawn[0].axes[:2]] == ["not computed in this study"] * 2
    assert not drawn[0].axes[2].texts


def test_measures_vs_gap_without_a_flatness_tau(study, tmp_path, drawn):
    """No flatness measure has a tau (e.g. NaN for every model): its panel says so instead of drawing."""
    summary = study["summary"].copy()
    summary.loc[summary["measure"] == "pacbayes_flatness", "tau_a"] = np.nan
    measures.measures_vs_gap(study["table"], summary, study["measure_info"], TARGET, tmp_path / "m.png")
    flatness = drawn[0].axes[3]
    assert flatness.get_title() == "best flatness measure: none"
    assert flatness.texts[0].get_text() == "not computed in this study"


# --------------------------------------------------------------------------- the gap across the grid


def test_gap_by_axis(partial_study, tmp_path, drawn):
    d = partial_study
    call("gap_by_axis", d, tmp_path / "g.png")
    panels = drawn[0].axes
    assert [ax.get_xlabel() for ax in panels] == ["width", "depth", "lr"]
    used = d["table"][d["table"]["is.converged"]]
    for ax, axis in zip(panels, ("width", "depth", "lr")):
        means = used.groupby(f"hp.{axis}")[f"gen.{TARGET}"].mean()
        (line,) = ax.get_lines()
        assert list(line.get_ydata()) == pytest.approx(means.tolist())
        assert labels(ax.get_xticklabels()) == [f"{v:g}" for v in means.index]
        assert sum(len(c.get_offsets()) for c in ax.collections) == N - 1
    assert "(1 not converged or without a value, not shown)" in drawn[0].get_suptitle()


def test_gap_by_axis_without_axes(study, tmp_path, captured):
    training_figures.gap_by_axis(study["table"], TARGET, [], tmp_path / "g.png")
    assert_png(tmp_path / "g.png")
    assert placeholder_text(captured[0]) == "the grid has no axis with more than one value"


# --------------------------------------------------------------------------- measure costs


def test_measure_costs(study, tmp_path, drawn):
    call("measure_costs", study, tmp_path / "c.png")
    left, right = drawn[0].axes[:2]
    costs = study["costs"]
    training = sum(k + 1.0 for k in range(N))
    totals = [(i + 1) / 10 * training for i in range(len(FAMILIES))]
    assert labels(left.get_yticklabels()) == ["training", *FAMILIES, "all families"]
    assert [bar.get_width() for bar in left.patches] == pytest.approx([training, *totals, sum(totals)])
    assert costs.groupby("family")["measure_time_s"].sum()[FAMILIES].tolist() == pytest.approx(totals)
    texts = [t.get_text() for t in left.texts]
    assert texts[0] == f" {training:.1f} s" and texts[1] == f" {totals[0]:.1f} s (10% of training)"
    assert right.get_xscale() == "log"


def test_measure_costs_empty(study, tmp_path, captured):
    training_figures.measure_costs(study["costs"].iloc[0:0], tmp_path / "c.png")
    assert_png(tmp_path / "c.png")
    assert placeholder_text(captured[0]) == "no measure costs (no measure family ran)"
