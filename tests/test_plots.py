"""Figures (bayesdta.plots): each renders under Agg and holds the expected elements."""

from __future__ import annotations

import inspect

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from scipy import integrate, special  # noqa: E402

from bayesdta.exceptions import SpecError  # noqa: E402
from bayesdta.families.priors import Prior  # noqa: E402
from bayesdta.plots import figures as P  # noqa: E402
from bayesdta.posterior import quantities as Q  # noqa: E402

PLOTS = [
    P.plot_forest,
    P.plot_sroc,
    P.plot_fagan,
    P.plot_lr_scatter,
    P.plot_deeks,
    P.plot_influence,
    P.plot_ppc,
    P.plot_prior_posterior,
]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _scatter(ax, label=None):
    cols = [c for c in ax.collections if isinstance(c, PathCollection)]
    if label is not None:
        cols = [c for c in cols if c.get_label() == label]
    return cols


def _n_points(ax, label=None):
    return sum(len(c.get_offsets()) for c in _scatter(ax, label))


def _legend_texts(ax_or_fig):
    leg = ax_or_fig.get_legend() if hasattr(ax_or_fig, "get_legend") else None
    if leg is None and hasattr(ax_or_fig, "legends") and ax_or_fig.legends:
        leg = ax_or_fig.legends[0]
    assert leg is not None, "no legend"
    texts = [t.get_text() for t in leg.get_texts()]
    if leg.get_title() is not None:
        texts.append(leg.get_title().get_text())
    return texts


def _tick_labels(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def _all_texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


# ------------------------------------------------------------------------------------------
# API conventions
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("func", PLOTS, ids=lambda f: f.__name__)
def test_plot_signature_keyword_only_and_documented(func):
    sig = inspect.signature(func)
    params = list(sig.parameters.values())
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    doc = func.__doc__ or ""
    for p in params[1:]:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            assert f"**{p.name}" in doc
            continue
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, p.name
        assert p.name in doc, f"{func.__name__}: parameter {p.name} not documented"
    assert "Returns" in doc and "Figure" in doc


def test_save_figure_writes_png_pdf_svg(dementia_fit, tmp_path):
    fig = P.plot_sroc(dementia_fit)
    paths = P.save_figure(fig, tmp_path / "sub" / "sroc")
    assert [p.suffix for p in paths] == [".png", ".pdf", ".svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in paths[2].read_bytes()[:500]
    assert all(p.stat().st_size > 1000 for p in paths)


# ------------------------------------------------------------------------------------------
# forest
# ------------------------------------------------------------------------------------------
def test_forest_two_level(dementia_fit, tmp_path):
    f = dementia_fit
    fig = P.plot_forest(f, sort_by="sensitivity")
    assert len(fig.axes) == 2
    for ax, q in zip(fig.axes, ("Sensitivity", "Specificity"), strict=True):
        assert _n_points(ax, "Observed") == f.data.n_rows
        assert _n_points(ax, "Posterior (shrunken)") == f.data.n_rows
        assert ax.get_xlabel() == q
    labels = _tick_labels(fig.axes[0])
    assert set(f.data.studies) <= set(labels)
    assert "Summary" in labels and "Prediction (new study)" in labels
    # sorted by observed sensitivity: top to bottom increasing
    obs = fig.axes[0].collections
    pts = _scatter(fig.axes[0], "Observed")[0].get_offsets()
    order = np.argsort(-pts[:, 1])
    assert np.all(np.diff(pts[order, 0]) >= 0)
    assert obs  # drawn
    legend = _legend_texts(fig)
    assert any("exact CI" in t for t in legend) and any("prediction" in t for t in legend)
    paths = P.save_figure(fig, tmp_path / "forest", ("png", "pdf"))
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)


def test_forest_three_level_grouped_with_author_labels(smoking_fit):
    f = smoking_fit
    fig = P.plot_forest(f, labels="author", sort_by="study", show_predictive=False)
    ax = fig.axes[0]
    assert _n_points(ax, "Observed") == f.data.n_rows
    labels = _tick_labels(ax)
    authors = set(f.data.frame["author"])
    assert authors <= set(labels)
    assert "Prediction (new study)" not in labels
    assert any(lb.startswith("Summary") for lb in labels)
    # grouped: a study with several rows shows its models indented under the author heading
    assert sum(lb.startswith("   ") for lb in labels) > 0
    ungrouped = P.plot_forest(f, group_by_study=False, show_shrunken=False)
    assert _n_points(ungrouped.axes[0], "Observed") == f.data.n_rows
    assert _n_points(ungrouped.axes[0], "Posterior (shrunken)") == 0
    with pytest.raises(SpecError, match="sort_by"):
        P.plot_forest(f, sort_by="colour")


def test_forest_meta_regression_summary_label(osteo_fit):
    fig = P.plot_forest(osteo_fit, at={"backbone": "DenseNet"})
    assert "Summary (backbone=DenseNet)" in _tick_labels(fig.axes[0])


# ------------------------------------------------------------------------------------------
# SROC
# ------------------------------------------------------------------------------------------
def test_sroc_single_fit_elements(dementia_fit):
    f = dementia_fit
    fig = P.plot_sroc(f)
    ax = fig.axes[0]
    assert _n_points(ax, "Studies") == f.data.n_rows
    assert _n_points(ax, "Summary point") == 1
    curves = [ln for ln in ax.get_lines() if "SROC curve" in ln.get_label()]
    assert len(curves) == 1
    x = curves[0].get_xdata()
    lo, hi = Q.fpr_support(f)  # the tables' FPRs, FP = 0 at the posterior FPR (not 0)
    assert x.min() == pytest.approx(lo) and x.max() == pytest.approx(hi)
    assert lo > 0 and lo <= np.min((f.data.fp / f.data.n_nondiseased)[f.data.fp > 0])
    regions = [ln.get_label() for ln in ax.get_lines() if "region" in ln.get_label()]
    assert regions == ["95% credible region", "95% prediction region"]
    texts = _legend_texts(ax)
    auc = f.summary().loc["auc"]
    assert any("AUC" in t and f"{auc['median']:.2f}" in t for t in texts)
    assert ax.get_xlabel().startswith("1 \u2212 specificity") and ax.get_ylabel() == "Sensitivity"
    # summary point at the posterior medians
    pt = _scatter(ax, "Summary point")[0].get_offsets()[0]
    s = f.summary()
    assert pt[0] == pytest.approx(1 - s.loc["specificity", "median"], abs=1e-9)
    assert pt[1] == pytest.approx(s.loc["sensitivity", "median"], abs=1e-9)


def test_sroc_subgroups_by_covariate(osteo_fit):
    f = osteo_fit
    fig = P.plot_sroc(f, by="backbone", levels=(0.5, 0.95))
    ax = fig.axes[0]
    curves = [ln.get_label() for ln in ax.get_lines() if "SROC curve" in ln.get_label()]
    assert len(curves) == 3
    for lv in ("ResNet", "DenseNet", "Other"):
        assert any(c.startswith(f"{lv}:") and "AUC" in c for c in curves)
    assert _n_points(ax) - 3 == f.data.n_rows  # study points + one summary point per group
    assert sum("prediction region" in ln.get_label() for ln in ax.get_lines()) == 6


def test_sroc_several_fits_and_errors(dementia_fit, smoking_fit):
    fig = P.plot_sroc([dementia_fit, smoking_fit], labels=["Dementia", "Smoking"])
    texts = _legend_texts(fig.axes[0])
    assert sum("AUC" in t for t in texts) == 2
    assert any(t.startswith("Smoking:") for t in texts)
    with pytest.raises(SpecError):
        P.plot_sroc([dementia_fit, smoking_fit], labels=["only one"])
    fig, ax = plt.subplots()
    out = P.plot_sroc(dementia_fit, ax=ax, show_points=False, legend=False, extrapolate=True)
    assert out is fig and ax.get_legend() is None and _n_points(ax, "Studies") == 0


# ------------------------------------------------------------------------------------------
# Fagan, LR scatter, Deeks
# ------------------------------------------------------------------------------------------
def test_fagan_lines_follow_bayes_theorem(dementia_fit):
    fig = P.plot_fagan(dementia_fit, pretest=0.2)
    ax = fig.axes[0]
    table = Q.fagan(dementia_fit, pretest=[0.2])
    lr_pos = table.attrs["lr_positive"][0]
    line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("LR+"))
    (x0, x1), (y0, y1) = line.get_xdata(), line.get_ydata()
    assert (x0, x1) == (-1.0, 1.0)
    assert y0 == pytest.approx(-special.logit(0.2))
    assert y1 == pytest.approx(special.logit(table["positive"].iloc[0]))
    # the line crosses the middle (LR) scale at log(LR+)/2
    assert (y0 + y1) / 2 == pytest.approx(np.log(lr_pos) / 2, rel=0.02)
    texts = _legend_texts(ax)
    assert any("Pre-test probability 20%" in t for t in texts)
    assert any(t.startswith("LR\u2212") and "post-test" in t for t in texts)
    assert {"Pre-test\nprobability (%)", "Likelihood\nratio"} <= set(_all_texts(fig))
    with pytest.raises(SpecError):
        P.plot_fagan(dementia_fit, pretest=1.2)


def test_lr_scatter_quadrants(dementia_fit):
    fig = P.plot_lr_scatter(dementia_fit)
    ax = fig.axes[0]
    assert _n_points(ax, "Studies (observed)") == dementia_fit.data.n_rows
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    quadrant_texts = [t for t in _all_texts(fig) if "quadrant" in t]
    assert len(quadrant_texts) == 4
    assert any("exclusion & confirmation" in t for t in quadrant_texts)
    assert any(t.startswith("Summary: LR+") for t in _legend_texts(ax))


def test_deeks_plot(smoking_fit):
    res = Q.deeks(smoking_fit)
    for arg in (smoking_fit, smoking_fit.data):
        fig = P.plot_deeks(arg)
        ax = fig.axes[0]
        assert _n_points(ax, "Studies") == smoking_fit.data.n_rows
        assert any(ln.get_label() == "Regression line" for ln in ax.get_lines())
        title = _legend_texts(ax)[-1]
        assert "P" in title and f"{res['slope']:.2f}" in title
        assert ax.get_xscale() == "log"


# ------------------------------------------------------------------------------------------
# influence, PPC, prior vs posterior
# ------------------------------------------------------------------------------------------
def test_influence_plot_without_and_with_refits(dementia_fit):
    f = dementia_fit
    res = Q.influence(f, refit="none")
    fig = P.plot_influence(f, result=res)
    a1, a2 = fig.axes
    assert _tick_labels(a1) == f.data.studies
    assert _n_points(a1) == f.data.n_rows  # one Pareto k per study
    a1c = P.plot_influence(f, result=res, show_conditional=True).axes[0]
    assert _n_points(a1c) == 2 * f.data.n_rows  # plus the conditional-k crosses on request
    assert "elpd" in a2.get_xlabel()
    # a result with two refitted studies (numbers made up: the plot only draws them)
    fake = res.copy()
    fake.loc[fake.index[:2], "refitted"] = True
    fake.loc[fake.index[:2], "delta_sensitivity"] = [-0.01, 0.02]
    fake.loc[fake.index[:2], "delta_specificity"] = [0.005, -0.003]
    fig = P.plot_influence(f, result=fake)
    a2 = fig.axes[1]
    assert _n_points(a2, "Sensitivity") == 2 and _n_points(a2, "Specificity") == 2
    assert "Change in summary" in a2.get_xlabel()


def test_ppc_plot(smoking_fit):
    f = smoking_fit
    fig = P.plot_ppc(f, seed=1)
    assert len(fig.axes) == 2
    for ax, name in zip(fig.axes, ("TP", "TN"), strict=True):
        assert _n_points(ax) == f.data.n_rows
        assert ax.get_title().startswith(f"{name}:") and f"/{f.data.n_rows}" in ax.get_title()
        assert ax.get_xlabel().startswith(f"Observed {name}")
    fig = P.plot_ppc(f, seed=1, mixed=True, scale="proportion")
    assert fig.axes[0].get_xscale() == "linear"
    with pytest.raises(SpecError):
        P.plot_ppc(f, scale="log")


def test_prior_posterior_panels(osteo_fit):
    f = osteo_fit
    fig = P.plot_prior_posterior(f)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    n_coef = sum(len(f.design.columns[o]) for o in ("sensitivity", "specificity"))
    assert len(visible) == n_coef + 6  # + between SDs, rho, within SDs, rho_within
    for ax in visible:
        assert any(ln.get_label() == "Prior" for ln in ax.get_lines())
        assert len(ax.patches) > 0  # posterior histogram
    titles = [ax.get_title() for ax in visible]
    assert any(t.startswith("rho_within") and "LKJ" in t for t in titles)
    sub = P.plot_prior_posterior(f, var_names=["tau_sensitivity", "rho"])
    assert sum(ax.get_visible() for ax in sub.axes) == 2
    with pytest.raises(SpecError, match="unknown"):
        P.plot_prior_posterior(f, var_names=["sigma"])


@pytest.mark.parametrize(
    "prior",
    [
        Prior.make("Normal", mu=0.5, sigma=2.0),
        Prior.make("HalfNormal", sigma=1.5),
        Prior.make("HalfStudentT", nu=3.0, sigma=1.0),
        Prior.make("HalfCauchy", beta=1.0),
        Prior.make("Exponential", lam=2.0),
        Prior.make("LKJ", eta=2.0),
    ],
    ids=str,
)
def test_prior_densities_integrate_to_one(prior):
    lo, hi = {"Normal": (-np.inf, np.inf), "LKJ": (-1.0, 1.0)}.get(prior.dist, (0.0, np.inf))
    total, _ = integrate.quad(lambda x: float(P._prior_pdf(prior, np.array(x))), lo, hi)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_lkj_prior_density_matches_simulation():
    """(rho + 1) / 2 ~ Beta(eta, eta): compare the density with a histogram of draws."""
    rng = np.random.default_rng(0)
    rho = 2 * rng.beta(3.0, 3.0, size=200_000) - 1
    hist, edges = np.histogram(rho, bins=20, range=(-1, 1), density=True)
    mid = 0.5 * (edges[:-1] + edges[1:])
    dens = P._prior_pdf(Prior.make("LKJ", eta=3.0), mid)
    np.testing.assert_allclose(hist, dens, atol=0.02)


# ------------------------------------------------------------------------------------------
# issue 9: reference-level legends, quadrant labels, Fagan lists, legends, axis labels
# ------------------------------------------------------------------------------------------
REF = "at reference levels (backbone=ResNet"


def test_meta_regression_legends_say_reference_levels(osteo_fit, dementia_fit):
    texts = " ".join(_legend_texts(P.plot_lr_scatter(osteo_fit).axes[0])).replace("\n", " ")
    assert REF in texts
    texts = " ".join(_legend_texts(P.plot_sroc(osteo_fit).axes[0])).replace("\n", " ")
    assert REF in texts
    fig = P.plot_forest(osteo_fit, annotate=False)
    assert any(REF in t.get_text() for t in fig.texts)
    texts = " ".join(_legend_texts(P.plot_lr_scatter(dementia_fit).axes[0]))
    assert "reference levels" not in texts


def test_lr_scatter_quadrant_labels_sit_in_their_quadrants(dementia_fit):
    """All LR- below the vertical threshold (here 10): the right quadrants must still show."""
    for thr in (10.0, 0.1, 1e-3):
        fig = P.plot_lr_scatter(dementia_fit, lr_negative_threshold=thr)
        ax = fig.axes[0]
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        x_thr = ax.transData.transform((thr, 10.0))[0]
        y_thr = ax.transData.transform((thr, 10.0))[1]
        labels = {t.get_text().split("\n")[0]: t for t in ax.texts}
        for name in ("Left upper", "Right upper", "Left lower", "Right lower"):
            box = labels[f"{name} quadrant"].get_window_extent(renderer)
            if name.startswith("Left"):
                assert box.x1 <= x_thr + 1, (thr, name)
            else:
                assert box.x0 >= x_thr - 1, (thr, name)
            if name.endswith("upper"):
                assert box.y0 >= y_thr - 1, (thr, name)
            else:
                assert box.y1 <= y_thr + 1, (thr, name)


def test_fagan_takes_a_list_of_pretest_probabilities(dementia_fit):
    fig = dementia_fit.plot("fagan", pretest=[0.1, 0.3, 0.5])
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("Pre-test")]
    assert len(lines) == 6  # one positive and one negative line per pre-test probability
    texts = _legend_texts(ax)
    for p in ("10%", "30%", "50%"):
        assert sum(t.startswith(f"Pre-test {p}, LR") for t in texts) == 2
    with pytest.raises(SpecError, match="between 0 and 1"):
        P.plot_fagan(dementia_fit, pretest=[0.2, 1.5])


def test_influence_legend_does_not_overprint(dementia_fit):
    f = dementia_fit
    res = Q.influence(f, refit="none")
    fake = res.copy()
    fake.loc[fake.index[:2], "refitted"] = True
    fake.loc[fake.index[:2], "delta_sensitivity"] = [-0.01, 0.02]
    fake.loc[fake.index[:2], "delta_specificity"] = [0.005, -0.003]
    fig = P.plot_influence(f, result=fake, title="Influence")
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    boxes = [lg.get_window_extent(r) for lg in legends]
    boxes += [ax.get_window_extent(r) for ax in fig.axes]
    if fig._suptitle is not None:
        boxes.append(fig._suptitle.get_window_extent(r))
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (i, j)
    texts = [t.get_text() for lg in legends for t in lg.get_texts()]
    assert "Sensitivity" in texts and not any("conditional" in t for t in texts)


def test_prior_posterior_axes_are_labelled(osteo_fit):
    fig = P.plot_prior_posterior(osteo_fit)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    for ax in visible:
        assert ax.get_xlabel() and ax.get_ylabel() == "Density"
    labels = {ax.get_title().split("\n")[0]: ax.get_xlabel() for ax in visible}
    assert labels["tau_sensitivity"] == "SD between studies, logit scale"
    assert labels["rho_within"] == "correlation within studies"
