"""Comparative accuracy of several tests: :func:`compare_tests` and :class:`ComparativeFit`.

The model (``docs/comparative.md``; :mod:`bayesdta.families.comparative`): test-specific mean
logits, study effects shared by the tests of a study, and test-by-study deviations (the
three-level model with the study as cluster and the test's table as row), optionally with
test-specific deviation SDs, or without deviations (``comparison="shared"``, the comparative
model of Stata's metadta). Output: per-test summary points, relative sensitivity and
specificity (ratios and differences) for every ordered pair with credible intervals and
P(better), ranking probabilities and SUCRA, per-test SROC curves.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import registry
from ..data.comparative import ComparativeData, read_comparative
from ..data.tables import DTAData
from ..exceptions import SamplerWarning, SpecError
from ..families import stats
from ..families.comparative import (
    COMPARISON_MODELS,
    ComparativeSpec,
    build_comparative,
    test_design,
)
from ..families.links import inverse
from ..families.priors import parse_prior
from ..inference._arviz import ess_bulk, ess_tail, rhat, to_netcdf
from ..inference.diagnostics import OptionHints, chain_stats, diagnostic_record
from ..inference.sampling import SamplerSettings, sample

__all__ = ["compare_tests", "ComparativeFit", "RANKING_CRITERIA"]

#: What the tests can be ranked on: sensitivity, specificity, Youden's J = se + sp - 1.
RANKING_CRITERIA = ("sensitivity", "specificity", "youden")


def _ci_bounds(ci: float) -> tuple[float, float]:
    if not 0 < ci < 1:
        raise SpecError(f"ci must lie in (0, 1), got {ci}")
    return (1 - ci) / 2, 1 - (1 - ci) / 2


def _flat(x: Any) -> np.ndarray:
    """(chain, draw, ...) -> (chain * draw, ...)."""
    a = np.asarray(x)
    return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


class ComparativeFit:
    """A fitted comparison of tests.

    Attributes
    ----------
    comparative : ComparativeData
        What was read (tests, studies, design, pairing).
    spec : ComparativeSpec
        The comparison model and its priors.
    idata : arviz.InferenceData
        Posterior draws.
    sampler : dict
        Settings, timing, attempts and diagnostics of the run.
    """

    def __init__(
        self,
        comparative: ComparativeData,
        spec: ComparativeSpec,
        idata: Any,
        sampler: Mapping[str, Any],
    ) -> None:
        self.comparative = comparative
        self.spec = spec
        self.idata = idata
        self.sampler = dict(sampler)

    # ------------------------------------------------------------------ draws
    @property
    def tests(self) -> list[str]:
        """The tests (reference first)."""
        return list(self.comparative.tests)

    @property
    def data(self) -> DTAData:
        """The 2x2 tables."""
        return self.comparative.data

    def draws(self) -> dict[str, np.ndarray]:
        """Posterior draws, flattened over chains: per test arrays of shape (draws, tests).

        Keys: ``mu_sensitivity``, ``mu_specificity`` (mean logits per test), ``sensitivity``,
        ``specificity`` (inverse link), ``sd_sensitivity``, ``sd_specificity``,
        ``rho_total`` (between-study SDs and correlation of each test: shared study effect
        plus test-by-study deviation), and the hyperparameters ``tau_*``, ``rho``,
        ``tau_within_*`` (per test), ``rho_within``.
        """
        post = self.idata.posterior
        T = len(self.tests)
        out: dict[str, np.ndarray] = {}
        for o in ("sensitivity", "specificity"):
            out[f"mu_{o}"] = _flat(post[f"beta_{o}"].values)[:, :T]
            out[o] = inverse(out[f"mu_{o}"], self.spec.link)
            out[f"tau_{o}"] = _flat(post[f"tau_{o}"].values)
            if f"tau_within_{o}" in post:
                tw = _flat(post[f"tau_within_{o}"].values)
                out[f"tau_within_{o}"] = tw if tw.ndim == 2 else np.repeat(tw[:, None], T, 1)
            else:
                out[f"tau_within_{o}"] = np.zeros_like(out[f"mu_{o}"])
        out["rho"] = _flat(post["rho"].values)
        out["rho_within"] = (
            _flat(post["rho_within"].values) if "rho_within" in post else np.zeros_like(out["rho"])
        )
        sd_se, sd_sp, r = stats.total_covariance(
            out["tau_sensitivity"][:, None],
            out["tau_specificity"][:, None],
            out["rho"][:, None],
            out["tau_within_sensitivity"],
            out["tau_within_specificity"],
            out["rho_within"][:, None],
        )
        with np.errstate(invalid="ignore"):
            out["sd_sensitivity"], out["sd_specificity"] = sd_se, sd_sp
            out["rho_total"] = np.nan_to_num(r, nan=0.0)
        return out

    # ------------------------------------------------------------------ tables
    def summary(self, ci: float = 0.95) -> pd.DataFrame:
        """Per-test summary points and between-study SDs.

        One row per (test, quantity): ``sensitivity``, ``specificity`` (inverse link of the
        test's mean logit), ``sd_sensitivity``, ``sd_specificity`` (between-study SD of the
        test's logits: ``sqrt(tau^2 + tau_within[t]^2)``); columns ``mean``, ``median``,
        ``lower``, ``upper``, ``n_studies``, ``n_tables``.
        """
        lo, hi = _ci_bounds(ci)
        d = self.draws()
        rows = []
        for j, t in enumerate(self.tests):
            n_tab = int(np.sum(self.comparative.test_index == j))
            n_st = len(self.comparative.studies_per_test[t])
            for q in ("sensitivity", "specificity", "sd_sensitivity", "sd_specificity"):
                x = d[q][:, j]
                rows.append(
                    {
                        "test": t,
                        "quantity": q,
                        "mean": float(np.mean(x)),
                        "median": float(np.median(x)),
                        "lower": float(np.quantile(x, lo)),
                        "upper": float(np.quantile(x, hi)),
                        "n_studies": n_st,
                        "n_tables": n_tab,
                    }
                )
        return pd.DataFrame(rows)

    def parameters(self, ci: float = 0.95) -> pd.DataFrame:
        """Posterior of the model's parameters with R-hat and bulk / tail ESS."""
        lo, hi = _ci_bounds(ci)
        post = self.idata.posterior
        rows = []
        for name in self._parameter_names():
            var, _, idx = name.partition("[")
            x = post[var].values
            if idx:
                j = self.tests.index(idx.rstrip("]"))
                x = x[..., j]
            flat = x.reshape(-1)
            rows.append(
                {
                    "parameter": name,
                    "mean": float(np.mean(flat)),
                    "sd": float(np.std(flat, ddof=1)),
                    "lower": float(np.quantile(flat, lo)),
                    "upper": float(np.quantile(flat, hi)),
                    "r_hat": rhat(x),
                    "ess_bulk": ess_bulk(x),
                    "ess_tail": ess_tail(x),
                }
            )
        return pd.DataFrame(rows).set_index("parameter")

    def _parameter_names(self) -> list[str]:
        post = self.idata.posterior
        names = [f"beta_{o}[{t}]" for o in ("sensitivity", "specificity") for t in self.tests]
        names += ["tau_sensitivity", "tau_specificity", "rho"]
        for o in ("sensitivity", "specificity"):
            v = f"tau_within_{o}"
            if v in post:
                names += [f"{v}[{t}]" for t in self.tests] if post[v].ndim == 3 else [v]
        if "rho_within" in post:
            names.append("rho_within")
        return names

    def relative(self, ci: float = 0.95) -> pd.DataFrame:
        """Relative accuracy for every ordered pair of tests, in both directions.

        One row per (test, comparator, outcome): ``ratio`` = accuracy of ``test`` / accuracy of
        ``comparator`` and ``difference`` = their difference (posterior median and ``ci``
        interval), ``p_better`` = P(accuracy of ``test`` > accuracy of ``comparator``), and
        ``correlation``: posterior median of the correlation of the two tests' logits within a
        study, ``tau^2 / (sd_test sd_comparator)`` (1 in the ``"shared"`` model).
        """
        lo, hi = _ci_bounds(ci)
        d = self.draws()
        corr = {}
        for o in ("sensitivity", "specificity"):
            sd = d[f"sd_{o}"]
            with np.errstate(invalid="ignore", divide="ignore"):
                corr[o] = d[f"tau_{o}"][:, None, None] ** 2 / (sd[:, :, None] * sd[:, None, :])
        rows = []
        for i, a in enumerate(self.tests):
            for j, b in enumerate(self.tests):
                if i == j:
                    continue
                for o in ("sensitivity", "specificity"):
                    ratio = d[o][:, i] / d[o][:, j]
                    diff = d[o][:, i] - d[o][:, j]
                    rows.append(
                        {
                            "test": a,
                            "comparator": b,
                            "outcome": o,
                            "ratio": float(np.median(ratio)),
                            "ratio_lower": float(np.quantile(ratio, lo)),
                            "ratio_upper": float(np.quantile(ratio, hi)),
                            "difference": float(np.median(diff)),
                            "difference_lower": float(np.quantile(diff, lo)),
                            "difference_upper": float(np.quantile(diff, hi)),
                            "p_better": float(np.mean(diff > 0)),
                            "correlation": float(np.median(corr[o][:, i, j])),
                        }
                    )
        return pd.DataFrame(rows)

    def ranking(self, criteria: Sequence[str] = RANKING_CRITERIA) -> pd.DataFrame:
        """Ranking probabilities: P(rank k) per test (rank 1 = most accurate), mean rank, SUCRA.

        Per draw the tests are ranked on each criterion (``sensitivity``, ``specificity``,
        ``youden`` = se + sp - 1, of the summary points); SUCRA = (T - mean rank) / (T - 1)
        (Salanti et al. 2011), 1 for a test always ranked first.
        """
        d = self.draws()
        T = len(self.tests)
        rows = []
        for c in criteria:
            if c not in RANKING_CRITERIA:
                raise SpecError(f"ranking criterion must be one of {list(RANKING_CRITERIA)}")
            x = d["sensitivity"] + d["specificity"] - 1 if c == "youden" else d[c]
            ranks = (-x).argsort(axis=1).argsort(axis=1) + 1  # 1 = largest
            for j, t in enumerate(self.tests):
                row: dict[str, Any] = {"criterion": c, "test": t}
                for k in range(1, T + 1):
                    row[f"p_rank_{k}"] = float(np.mean(ranks[:, j] == k))
                mean_rank = float(np.mean(ranks[:, j]))
                row["mean_rank"] = mean_rank
                row["sucra"] = (T - mean_rank) / (T - 1)
                rows.append(row)
        return pd.DataFrame(rows)

    def sroc(
        self, *, fpr: Sequence[float] | np.ndarray | None = None, ci: float = 0.95
    ) -> pd.DataFrame:
        """Per-test SROC curves (HSROC line of the test's mean and between-study covariance).

        Long table: ``test``, ``fpr``, ``median``, ``lower``, ``upper`` of the expected
        sensitivity over the posterior draws (:func:`bayesdta.families.stats.sroc_curve`).
        """
        lo, hi = _ci_bounds(ci)
        grid = np.linspace(0.005, 0.995, 100) if fpr is None else np.asarray(fpr, dtype=float)
        d = self.draws()
        frames = []
        for j, t in enumerate(self.tests):
            curve = stats.sroc_curve(
                grid,
                d["mu_sensitivity"][:, j],
                d["mu_specificity"][:, j],
                d["sd_sensitivity"][:, j],
                d["sd_specificity"][:, j],
                d["rho_total"][:, j],
                link=self.spec.link,
            )
            frames.append(
                pd.DataFrame(
                    {
                        "test": t,
                        "fpr": grid,
                        "median": np.nanmedian(curve, axis=0),
                        "lower": np.nanquantile(curve, lo, axis=0),
                        "upper": np.nanquantile(curve, hi, axis=0),
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def design_table(self) -> pd.DataFrame:
        """Studies x tests: tables per test and whether the study looks paired."""
        return self.comparative.design_table()

    # ------------------------------------------------------------------ misc
    def diagnostics(self) -> dict[str, Any]:
        """Divergences, max R-hat, min bulk and tail ESS over the model's parameters."""
        return dict(self.sampler.get("diagnostics", {}))

    def describe(self) -> str:
        """What was read and fitted, in two lines."""
        return f"{self.comparative.describe()}\n{_model_line(self.spec)}"

    def plot(self, kind: str = "comparative_sroc", **kwargs: Any):
        """A registered figure of this comparison (default: per-test SROC curves)."""
        return registry.figure(kind)(self, **kwargs)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save to netCDF (posterior, tables, what was read, model, settings).

        :func:`bayesdta.load` reads it back (``bayesdta_kind = "comparative"``); every table
        of the loaded fit (summary, relative, ranking, sroc, parameters) equals this fit's.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        idata = self.idata.copy()
        c = self.comparative
        attrs = dict(idata.posterior.attrs)
        attrs["bayesdta_kind"] = "comparative"
        attrs["bayesdta_data"] = c.data.to_json()
        attrs["bayesdta_comparative"] = json.dumps(
            {
                "test": c.test,
                "tests": list(c.tests),
                "test_index": [int(i) for i in c.test_index],
                "studies_per_test": c.studies_per_test,
                "design": {s: list(t) for s, t in c.design.items()},
                "paired": c.paired,
                "paired_declared": c.paired_declared,
                "info": c.info,
            },
            default=str,
        )
        attrs["bayesdta_comparative_spec"] = json.dumps(
            {
                "model": self.spec.model,
                "priors": {k: _prior_json(v) for k, v in self.spec.priors.items()},
                "link": self.spec.link,
                "parameterization": self.spec.parameterization,
            }
        )
        attrs["bayesdta_sampler"] = json.dumps(self.sampler, default=str)
        idata.posterior.attrs = attrs
        to_netcdf(idata, path)
        return path

    def __repr__(self) -> str:
        return (
            f"ComparativeFit({len(self.tests)} tests {self.tests}, model {self.spec.model!r}, "
            f"{self.data.n_rows} tables / {self.data.n_studies} studies)"
        )


def _prior_json(value: Any) -> Any:
    """A prior override as JSON at full precision (``{"dist": ..., ...}``); numbers as is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return parse_prior(value).to_dict()


def _model_line(spec: ComparativeSpec) -> str:
    what = {
        "deviations": "shared study effects + test-by-study deviations (one SD for all tests)",
        "deviations_by_test": "shared study effects + test-by-study deviations with "
        "test-specific SDs",
        "shared": "shared study effects only (tests differ by their means; metadta's model)",
    }[spec.model]
    return f"comparison model {spec.model!r}: test-specific mean {spec.link}s, {what}"


def _diagnose(idata: Any, names: Sequence[str], used: SamplerSettings) -> dict[str, Any]:
    post = idata.posterior
    named = []
    for v in names:
        if v not in post:
            continue
        x = post[v].values
        x = x.reshape(x.shape[0], x.shape[1], -1)
        named += [(f"{v}[{k}]" if x.shape[2] > 1 else v, x[..., k]) for k in range(x.shape[2])]
    return diagnostic_record(
        chain_stats(named, idata.sample_stats),
        draws=int(used.draws or 0),
        tune=int(used.tune or 0),
        target_accept=float(used.target_accept or 0.8),
        parameterization=None,
        hints=OptionHints(call="bd.compare_tests", cli=False),
    )


_DIAG_VARS = (
    "beta_sensitivity",
    "beta_specificity",
    "tau_sensitivity",
    "tau_specificity",
    "rho",
    "tau_within_sensitivity",
    "tau_within_specificity",
    "rho_within",
)


def _clean(diag: Mapping[str, Any], min_ess: float) -> bool:
    return (
        diag["divergences"] == 0
        and diag["max_r_hat"] <= 1.01
        and diag["min_ess_bulk"] >= min_ess
        and diag["min_ess_tail"] >= min_ess
    )


def compare_tests(
    data: DTAData | pd.DataFrame | str | Path | ComparativeData,
    *,
    test: str = "test",
    study: str | None = None,
    model: str | None = None,
    paired: bool | None = None,
    comparison: str = "deviations",
    tau_by_test: bool = False,
    reference: str | None = None,
    priors: Mapping[str, Any] | None = None,
    link: str = "logit",
    parameterization: str = "auto",
    draws: int | None = None,
    tune: int | None = None,
    chains: int = 4,
    target_accept: float | None = None,
    seed: int | None = None,
    cores: int | None = None,
    progress: bool = False,
    backend: str = "nutpie",
    verbose: bool = True,
    escalate: bool = True,
) -> ComparativeFit:
    """Compare the accuracy of several tests evaluated in the same or different studies.

    Parameters
    ----------
    data : DTAData, DataFrame, CSV path or ComparativeData
        One row per 2x2 table, with a study column and a test column.
    test : str
        The test column: it identifies the tables of a study and is the comparison covariate.
    study, model : str, optional
        Study id column; a column telling apart several tables of one test in a study.
    paired : bool, optional
        Declared design, checked against the counts (see :func:`read_comparative`).
    comparison : {"deviations", "deviations_by_test", "shared"}
        The comparison model (``docs/comparative.md``): shared study effects plus
        test-by-study deviations (default), the same with test-specific deviation SDs, or
        shared study effects only (Stata metadta's comparative model).
    tau_by_test : bool
        Test-specific between-study SDs: with ``comparison="deviations"`` selects
        ``"deviations_by_test"``.
    reference : str, optional
        Test listed first in the tables (ordering only; every pair is reported both ways).
    priors : mapping, optional
        Overrides of the normal family's priors (``mu`` = every test's mean logit, ``tau``,
        ``rho``, ``tau_within``, ``rho_within``; e.g. ``{"tau": "HalfNormal(1)"}``).
    link, parameterization
        As for :func:`bayesdta.fit`.
    draws, tune, chains, target_accept, seed, cores, progress, backend
        Sampler settings (defaults: those of three-level models, 800 + 300 draws per chain,
        target_accept 0.9).
    verbose : bool
        Print what was read and which model is fitted to standard error.
    escalate : bool
        When the first run has divergences, R-hat > 1.01 or a bulk / tail ESS < 400 (100 per
        chain with fewer than 4 chains) on a parameter, run once more with target_accept 0.97
        and twice the draws (options left at their defaults);
        remaining problems raise a :class:`SamplerWarning` that names the fix.

    Returns
    -------
    ComparativeFit
    """
    if tau_by_test and comparison == "deviations":
        comparison = "deviations_by_test"
    elif tau_by_test and comparison != "deviations_by_test":
        raise SpecError(
            f"tau_by_test=True needs test-by-study deviations; comparison={comparison!r} has none"
        )
    if comparison not in COMPARISON_MODELS:
        raise SpecError(f"comparison must be one of {list(COMPARISON_MODELS)}, got {comparison!r}")
    if isinstance(data, ComparativeData):
        cdata = data
    else:
        cdata = read_comparative(
            data, test=test, study=study, model=model, paired=paired, reference=reference
        )
    spec = ComparativeSpec(
        model=comparison, priors=dict(priors or {}), link=link, parameterization=parameterization
    )
    design = test_design(cdata.test_index, cdata.tests, cdata.test)
    settings = SamplerSettings(
        backend=backend,  # type: ignore[arg-type]
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
        seed=seed,
        cores=cores,
        progress=progress,
    )
    if verbose:
        print(f"{cdata.describe()}\n{_model_line(spec)}", file=sys.stderr, flush=True)
    built = build_comparative(cdata.data, spec, design, cdata.test_index)
    min_ess = 400.0 if chains >= 4 else 100.0 * chains
    attempts = []
    idata, timing, used = sample(built, settings)
    diag = _diagnose(idata, _DIAG_VARS, used)
    attempts.append({"settings": used.to_dict(), "timing": timing, "diagnostics": diag})
    if escalate and not _clean(diag, min_ess):
        more = replace(
            settings,
            draws=draws or 2 * used.draws,
            target_accept=target_accept or 0.97,
            seed=None if seed is None else seed + 1,
        )
        idata2, timing2, used2 = sample(built, more)
        diag2 = _diagnose(idata2, _DIAG_VARS, used2)
        attempts.append({"settings": used2.to_dict(), "timing": timing2, "diagnostics": diag2})
        idata, diag = idata2, diag2
    if not _clean(diag, min_ess):
        warnings.warn(
            f"comparison of tests: sampling not clean ({diag['divergences']} divergences, "
            f"max R-hat {diag['max_r_hat']:.3f}, min ESS bulk {diag['min_ess_bulk']:.0f} / "
            f"tail {diag['min_ess_tail']:.0f}): "
            + (
                "; ".join(diag["warnings"])
                or f"set draws={2 * used.draws} (bd.compare_tests(..., draws={2 * used.draws}))"
            )
            + "; or use parameterization='noncentered'",
            SamplerWarning,
            stacklevel=2,
        )
    sampler = {
        "settings": attempts[-1]["settings"],
        "timing": attempts[-1]["timing"],
        "attempts": attempts,
        "diagnostics": diag,
        "structure_key": built.structure_key,
    }
    return ComparativeFit(cdata, spec, idata, sampler)


@registry.register_loader("comparative")
def _load_comparative(idata: Any, path: str | Path) -> ComparativeFit:
    """Rebuild a :class:`ComparativeFit` from a file of :meth:`ComparativeFit.save`.

    Called by :func:`bayesdta.load` for ``bayesdta_kind = "comparative"``.
    """
    attrs = dict(idata.posterior.attrs)
    try:
        attrs.pop("bayesdta_kind")
        data = DTAData.from_json(attrs.pop("bayesdta_data"))
        c = json.loads(attrs.pop("bayesdta_comparative"))
        sp = json.loads(attrs.pop("bayesdta_comparative_spec"))
        sampler = json.loads(attrs.pop("bayesdta_sampler"))
    except KeyError:
        raise SpecError(
            f"{str(path)!r} was not written by bayesdta (ComparativeFit.save)"
        ) from None
    cdata = ComparativeData(
        data=data,
        test=c["test"],
        tests=list(c["tests"]),
        test_index=np.asarray(c["test_index"], dtype=np.int64),
        studies_per_test={t: list(v) for t, v in c["studies_per_test"].items()},
        design={s: tuple(t) for s, t in c["design"].items()},
        paired={s: bool(v) for s, v in c["paired"].items()},
        paired_declared=c["paired_declared"],
        info=dict(c["info"]),
    )
    spec = ComparativeSpec(**sp)
    idata.posterior.attrs = attrs
    return ComparativeFit(cdata, spec, idata, sampler)
