"""Latent-class family (imperfect reference standard, issue 12).

Closed forms are checked against a direct enumeration over the latent status written here;
the sampled model by recovery on the simulated worked example (known truth: CT perfect, DXA
imperfect) together with the bias of the perfect-reference bivariate model on the same data,
and by agreement with an independent plain-PyMC implementation
(``validation/latent_class_independent.py``).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesdta as bd
from bayesdta.families.latent_class import (
    LatentClassSpec,
    build_latent_class_model,
    cell_probabilities,
    multinomial_loglik,
)

ROOT = Path(__file__).resolve().parents[1]
TRUTH = bd.load_truth("osteoporosis_latent_class")
PRIORS = {"DXA": {"sensitivity": "Beta(15, 5)", "specificity": "Beta(45, 5)"}, "CT": "perfect"}
CELLS = ((1, 1), (1, 0), (0, 1), (0, 0))  # (index, reference) of TP, FP, FN, TN


def _enumerate(se1, sp1, se2, sp2, pi, c1=0.0, c0=0.0):
    """P(T1 = a, T2 = b) = sum over the latent status d of P(d) P(a, b | d), written out."""
    out = []
    for a, b in CELLS:
        sign = 1.0 if a == b else -1.0
        p_d1 = (se1 if a else 1 - se1) * (se2 if b else 1 - se2) + sign * c1
        p_d0 = ((1 - sp1) if a else sp1) * ((1 - sp2) if b else sp2) + sign * c0
        out.append(pi * p_d1 + (1 - pi) * p_d0)
    return np.stack(out, axis=-1)


@pytest.fixture(scope="module")
def frame():
    return bd.load_example("osteoporosis_latent_class").frame


# ------------------------------------------------------------------ closed forms
def test_cell_probabilities_match_enumeration_and_stay_in_range():
    rng = np.random.default_rng(3)
    k = 200
    se1, sp1, se2, sp2, pi = rng.uniform(0.01, 0.99, size=(5, k))
    u1, u0 = rng.uniform(0, 1, size=(2, k))
    c1 = u1 * (np.minimum(se1, se2) - se1 * se2)
    c0 = u0 * (np.minimum(sp1, sp2) - sp1 * sp2)
    p = cell_probabilities(se1, sp1, se2, sp2, pi, c1, c0)
    np.testing.assert_allclose(p, _enumerate(se1, sp1, se2, sp2, pi, c1, c0), rtol=1e-12)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    assert (p >= 0).all()
    # the largest admissible covariance makes a conditional cell exactly 0 (the bound is tight)
    cmax = np.minimum(se1, se2) - se1 * se2
    diseased = cell_probabilities(se1, sp1, se2, sp2, 1.0, cmax, 0.0)
    np.testing.assert_allclose(diseased[:, 1:3].min(axis=1), 0.0, atol=1e-12)


def test_multinomial_loglik_matches_scipy():
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 40, size=(6, 4))
    probs = rng.dirichlet(np.ones(4), size=6)
    ref = [stats.multinomial.logpmf(c, c.sum(), p) for c, p in zip(counts, probs, strict=True)]
    np.testing.assert_allclose(multinomial_loglik(counts, probs), ref, rtol=1e-10)


def test_model_likelihood_and_priors_match_direct_computation(frame):
    """The compiled model's likelihood and Beta priors equal a direct numpy computation."""
    data = bd.DTAData.from_frame(frame, study="study", model="model")
    spec = LatentClassSpec(
        reference_priors=PRIORS, conditional_dependence=True, priors={"prevalence": "Beta(2, 5)"}
    )
    m = build_latent_class_model(data, spec).model
    pot = {p.name: p for p in m.potentials}
    outs = [
        pot["likelihood"],
        pot["prevalence_prior"],
        m["theta"],
        m["prevalence"],
        m["reference_sensitivity"],
        m["reference_specificity"],
        m["dependence_diseased"],
        m["dependence_nondiseased"],
    ]
    fn = m.compile_fn(
        m.replace_rvs_by_values(outs), inputs=m.value_vars, point_fn=True, mode="FAST_COMPILE"
    )
    start = m.initial_point()
    rng = np.random.default_rng(5)
    n = data.n_rows
    counts = np.stack([data.tp, data.fp, data.fn, data.tn], axis=1)
    ridx = (frame["reference_standard"] == "DXA").to_numpy().astype(int)  # CT 0, DXA 1
    gaps = []
    for _ in range(3):
        point = {k: rng.normal(0, 0.7, size=np.shape(v)) for k, v in start.items()}
        ll, prior_prev, theta, prev, se2, sp2, d1, d0 = fn(point)
        assert se2[0] == 1.0 and sp2[0] == 1.0  # CT marked perfect
        se1 = 1 / (1 + np.exp(-theta[:n, 0]))
        sp1 = 1 / (1 + np.exp(-theta[:n, 1]))
        s2, p2 = se2[ridx], sp2[ridx]
        c1 = d1[ridx] * (np.minimum(se1, s2) - se1 * s2)
        c0 = d0[ridx] * (np.minimum(sp1, p2) - sp1 * p2)
        probs = _enumerate(se1, sp1, s2, p2, prev[:n], c1, c0)
        direct = np.sum(np.where(counts > 0, counts * np.log(probs), 0.0))
        np.testing.assert_allclose(ll, direct, rtol=1e-9)
        # Beta(2, 5) prior of the prevalence on the logit scale: log density + log Jacobian,
        # up to a constant
        gaps.append(prior_prev - np.sum(stats.beta.logpdf(prev, 2, 5) + np.log(prev * (1 - prev))))
    np.testing.assert_allclose(gaps, gaps[0], rtol=1e-9)


# ------------------------------------------------------------------ errors
def test_refuses_without_reference_priors(frame):
    with pytest.raises(bd.SpecError) as e:
        bd.fit_latent_class(frame, study="study", model="model", verbose=False)
    msg = str(e.value)
    assert "\n" not in msg and "not identifiable" in msg and "reference_priors=" in msg
    with pytest.raises(bd.SpecError, match="fit_latent_class"):
        bd.fit(frame, study="study", model="model", random_effects="latent_class", verbose=False)


@pytest.mark.parametrize(
    ("priors", "match"),
    [
        ({"DXA": PRIORS["DXA"]}, r"no entry for \['CT'\] of column 'reference_standard'"),
        ({**PRIORS, "MRI": "perfect"}, r"\['MRI'\], not values of column"),
        (
            {"DXA": {"sensitivity": "Normal(0, 1)", "specificity": "Beta(9, 1)"}, "CT": "perfect"},
            "must be a Beta",
        ),
        ({"DXA": {"sensitivity": "Beta(9, 1)"}, "CT": "perfect"}, "exactly the keys"),
    ],
)
def test_reference_prior_errors(frame, priors, match):
    with pytest.raises(bd.SpecError, match=match):
        bd.fit_latent_class(
            frame, study="study", model="model", reference_priors=priors, verbose=False
        )


def test_reference_column_errors_name_row_and_column(frame):
    with pytest.raises(bd.DTADataError, match="column 'ref' .* not in the data"):
        bd.fit_latent_class(
            frame,
            study="study",
            model="model",
            reference_standard="ref",
            reference_priors=PRIORS,
            verbose=False,
        )
    bad = frame.copy()
    bad.loc[4, "reference_standard"] = None
    with pytest.raises(bd.DTADataError, match=r"row 5 .*column 'reference_standard'"):
        bd.fit_latent_class(
            bad, study="study", model="model", reference_priors=PRIORS, verbose=False
        )


# ------------------------------------------------------------------ sampling
@pytest.fixture(scope="module")
def example_fits(frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc = bd.fit_latent_class(
            frame,
            study="study",
            model="model",
            reference_priors=PRIORS,
            seed=11,
            draws=500,
            tune=500,
            escalate=False,
            verbose=False,
        )
        naive = bd.fit(frame, study="study", model="model", levels=2, seed=11, verbose=False)
    return lc, naive


def test_recovery_and_perfect_reference_bias(example_fits):
    """Latent class covers the truth; the perfect-reference model is biased downwards.

    With an imperfect reference and conditional independence, the apparent sensitivity and
    specificity of the index test are below the true ones (the reference's errors count as
    the index test's); the DXA tables pull the bivariate summary point down.
    """
    lc, naive = example_fits
    s = lc.summary()
    truth = {
        "sensitivity": TRUTH["sensitivity"],
        "specificity": TRUTH["specificity"],
        "reference_sensitivity[DXA]": TRUTH["reference"]["DXA"]["sensitivity"],
        "reference_specificity[DXA]": TRUTH["reference"]["DXA"]["specificity"],
    }
    for k, v in truth.items():
        assert s.loc[k, "lower"] < v < s.loc[k, "upper"], (k, v, s.loc[k])
    assert s.loc["reference_sensitivity[CT]", "sd"] == 0.0
    n = naive.summary(quantities=["sensitivity", "specificity"])
    for k in ("sensitivity", "specificity"):
        # biased in the predicted direction, and the latent-class estimate is closer
        assert n.loc[k, "mean"] < truth[k], (k, n.loc[k])
        assert abs(s.loc[k, "mean"] - truth[k]) < abs(n.loc[k, "mean"] - truth[k])
    # on the DXA tables alone (CT tables weight 0) the bias is unmistakable
    dxa = (lc.data.frame["reference_standard"] == "DXA").to_numpy().astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nd = naive.refit(weights=dxa, escalate=False)
        nd = nd.summary(quantities=["sensitivity", "specificity"])
    for k in ("sensitivity", "specificity"):
        assert nd.loc[k, "upper"] < truth[k], (k, nd.loc[k])
    side = lc.compare_perfect_reference(naive)
    assert (side.loc[["sensitivity", "specificity"], "difference"] > 0).all()
    # the data informed the DXA accuracy: no identifiability warning here
    assert lc.identifiability()["informed"].all()


def test_identifiability_warning_when_data_cannot_inform(example_fits, frame):
    """DXA tables left out: the DXA accuracy is not informed, the fit says so.

    The types are renamed so that their order flips (A_DXA before CT): the compiled model of
    the first fit is re-used, and the labels, perfect flags and priors must follow the data.
    """
    renamed = frame.assign(reference_standard=frame["reference_standard"].replace("DXA", "A_DXA"))
    w = (frame["reference_standard"] == "CT").to_numpy().astype(float)  # DXA tables out
    priors = {"A_DXA": PRIORS["DXA"], "CT": "perfect"}
    with pytest.warns(bd.IdentifiabilityWarning, match=r"reference_sensitivity\[A_DXA\].*prior"):
        ref = bd.fit_latent_class(
            renamed,
            study="study",
            model="model",
            reference_priors=priors,
            weights=w,
            seed=2,
            draws=300,
            tune=300,
            chains=2,
            escalate=False,
            verbose=False,
        )
    ident = ref.identifiability()
    assert list(ident["reference"]) == ["A_DXA", "A_DXA"]
    assert not ident["informed"].any() and (ident["sd_ratio"] > 0.9).all()
    assert (ref.posterior["reference_sensitivity"].sel(reference="CT") == 1.0).all()
    # posterior ~ prior Beta(15, 5): mean 0.75
    acc = ref.reference_accuracy().set_index(["reference", "measure"])
    assert abs(acc.loc[("A_DXA", "sensitivity"), "mean"] - 0.75) < 0.03
    assert "reference_sensitivity[A_DXA]" not in ref.quantity_names()


def test_outputs(example_fits):
    lc, _ = example_fits
    prev = lc.prevalence()
    assert len(prev) == lc.data.n_rows and prev["mean"].between(0, 1).all()
    assert prev["lower"].le(prev["mean"]).all() and prev["mean"].le(prev["upper"]).all()
    curve = lc.sroc()
    assert curve["median"].between(0, 1).all() and curve["fpr"].is_monotonic_increasing
    assert "latent-class" in lc.format_summary().lower()


def test_same_seed_same_draws(example_fits):
    lc, _ = example_fits
    kw = {"seed": 5, "draws": 100, "tune": 100, "chains": 2, "escalate": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = lc.refit(**kw), lc.refit(**kw)
    for v in ("mu_sensitivity", "reference_specificity", "prevalence"):
        np.testing.assert_array_equal(a.posterior[v].values, b.posterior[v].values)


@pytest.mark.slow
def test_agreement_with_independent_pymc_implementation(frame):
    sys.path.insert(0, str(ROOT / "validation"))
    try:
        import latent_class_independent as ind
    finally:
        sys.path.pop(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = ind.fit_bayesdta(frame, draws=500, tune=500, seed=3)
        b = ind.fit_independent(frame, draws=500, tune=500, chains=2, seed=4)
    cmp = ind.compare(a, b)
    assert (cmp["z"].abs() < 4.5).all(), cmp
    diff = (cmp["bayesdta_mean"] - cmp["independent_mean"]).abs()
    assert (diff < 0.2 * cmp["independent_sd"]).all(), cmp
    assert cmp["sd_ratio"].between(0.75, 1.33).all(), cmp


# ------------------------------------------------------------------ spec, report, sweep
def test_spec_errors_are_one_line():
    import tomllib

    from bayesdta.reporting.spec import parse_spec

    raw = tomllib.loads((ROOT / "models" / "osteoporosis_latent_class.toml").read_text())
    spec = parse_spec(raw, source="x.toml")
    assert spec.latent_class["reference_priors"]["CT"] == "perfect"
    assert [s["name"] for s in spec.latent_class["sweep"]] == ["dxa_vague", "dxa_optimistic"]
    # a sweep set overrides only what it names
    assert spec.latent_class["sweep"][0]["reference_priors"]["CT"] == "perfect"
    bad = {
        **raw,
        "latent_class": {k: v for k, v in raw["latent_class"].items() if k != "reference_priors"},
    }
    with pytest.raises(bd.SpecError) as e:
        parse_spec(bad, source="x.toml")
    assert "\n" not in str(e.value) and "latent_class.reference_priors" in str(e.value)
    assert "not identifiable" in str(e.value)
    bad = {**raw, "latent_class": {**raw["latent_class"], "reference_priors": {"DXA": "perfekt"}}}
    with pytest.raises(bd.SpecError, match="latent_class.reference_priors"):
        parse_spec(bad, source="x.toml")


@pytest.mark.slow
def test_worked_example_spec_run_report_and_sweep(tmp_path):
    """models/osteoporosis_latent_class.toml end to end on small settings."""
    import dataclasses

    from bayesdta.reporting.latent_class import run_latent_class_sweep
    from bayesdta.reporting.report import build_report, run_analysis
    from bayesdta.reporting.spec import load_spec

    spec = load_spec(ROOT / "models" / "osteoporosis_latent_class.toml")
    small = {"draws": 200, "tune": 200, "chains": 2}
    lc = {**spec.latent_class, "sampler": small}
    spec = dataclasses.replace(
        spec,
        sampler={**spec.sampler, **small},
        latent_class=lc,
        outputs={**spec.outputs, "figures": ["sroc"], "figure_formats": ["png"]},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_analysis(spec, tmp_path)
        table = run_latent_class_sweep(spec, tmp_path / "sensitivity")
    side = pd.read_csv(tmp_path / "tables" / "latent_class_comparison.csv", index_col=0)
    assert {"perfect_reference_mean", "latent_class_mean"} <= set(side.columns)
    assert list(table["variant"]) == ["baseline", "dxa_vague", "dxa_optimistic"]
    # the DXA prior moves the DXA posterior in its direction (prior sensitivity is visible)
    med = table.set_index("variant")["reference_specificity[DXA]_median"]
    assert med["dxa_optimistic"] > med["dxa_vague"]
    build_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "Latent-class model (imperfect reference standard)" in md
    assert "Prior sensitivity of the latent-class model" in md
