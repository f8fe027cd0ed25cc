"""The shared diagnostics record: every problem is named with an option that fixes it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from bayesdta.inference.diagnostics import (
    ESS_MIN,
    RHAT_MAX,
    ChainStats,
    OptionHints,
    chain_stats,
    diagnostic_record,
)


def _stats(rh=1.0, eb=1000.0, et=1000.0, div=0, bf=0.9):
    names = ["mu", "tau", "rho"]
    return ChainStats(
        names,
        np.array([1.0, rh, np.nan]),
        np.array([2000.0, eb, np.nan]),
        np.array([2000.0, et, np.nan]),
        div,
        bf,
    )


def test_clean_run_has_no_warning_and_nan_never_wins():
    d = diagnostic_record(
        _stats(rh=1.002), draws=800, tune=300, target_accept=0.9, parameterization="c"
    )
    assert d["warnings"] == []
    assert d["worst"] == {"r_hat": "tau", "ess_bulk": "tau", "ess_tail": "tau"}


@pytest.mark.parametrize("ess", [50.0, 150.0, 390.0])
def test_suggested_draws_reach_the_ess_target(ess):
    """ESS grows linearly in the draws: the suggested draws must reach ESS_MIN at that rate."""
    draws = 800
    d = diagnostic_record(
        _stats(eb=ess), draws=draws, tune=300, target_accept=0.9, parameterization="centered"
    )
    (msg,) = d["warnings"]
    assert msg.startswith(f"bulk ESS {ess:.0f} < {ESS_MIN} for tau")
    suggested = int(re.search(r"set draws=(\d+)", msg).group(1))
    assert suggested * ess / draws >= ESS_MIN
    assert f"bd.fit(..., draws={suggested}), CLI --draws {suggested})" in msg


def test_each_problem_names_the_callers_options():
    hints = OptionHints(call="bd.fit_multiclass", cli=False)
    d = diagnostic_record(
        _stats(rh=1.2, eb=100, et=100, div=7, bf=0.1),
        draws=1000,
        tune=1000,
        target_accept=0.9,
        parameterization="noncentered",
        hints=hints,
    )
    text = " | ".join(d["warnings"])
    assert len(d["warnings"]) == 5  # divergences, R-hat, bulk, tail, E-BFMI
    assert "7 divergent transitions" in text and f"> {RHAT_MAX}" in text
    assert (
        "parameterization='centered' (bd.fit_multiclass(..., parameterization='centered'))" in text
    )
    assert "target_accept=0.95 (bd.fit_multiclass(..., target_accept=0.95))" in text
    assert "CLI" not in text and "bd.fit(" not in text


def test_no_parameterization_switch_when_the_model_has_none():
    hints = OptionHints(
        call="bd.fit_latent_class",
        cli=False,
        elsewhere=", or in [latent_class.sampler]",
        no_geometry_fix="use more informative reference priors",
    )
    d = diagnostic_record(
        _stats(div=3), draws=800, tune=300, target_accept=0.99, parameterization=None, hints=hints
    )
    (msg,) = d["warnings"]
    assert "parameterization" not in msg
    assert msg.endswith("use more informative reference priors")
    d = diagnostic_record(
        _stats(eb=100), draws=800, tune=300, target_accept=0.9, parameterization=None, hints=hints
    )
    assert d["warnings"][0].endswith("or in [latent_class.sampler])")


def test_chain_stats_flags_disagreeing_chains():
    """Two chains around different means: R-hat far above 1; iid chains: R-hat near 1."""
    rng = np.random.default_rng(0)
    same = rng.normal(size=(4, 500))
    apart = same + np.array([[0.0], [0.0], [3.0], [3.0]])
    ss = {"diverging": np.zeros((4, 500), bool)}
    s = chain_stats([("same", same), ("apart", apart), ("const", np.ones((4, 500)))], ss)
    assert s.r_hat[0] < 1.01 and s.r_hat[1] > 1.5 and np.isnan(s.r_hat[2])
    assert 1000 < s.ess_bulk[0] <= 2500 and s.ess_bulk[1] < 50
    d = diagnostic_record(s, draws=500, tune=500, target_accept=0.8, parameterization="centered")
    assert d["worst"]["r_hat"] == "apart" and np.isnan(d["min_bfmi"])
