"""Every ArviZ call of the package lives here (ArviZ 0.x, InferenceData).

Moving to ArviZ 1 (DataTree) means changing this module only.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "InferenceData",
    "make_idata",
    "ess_bulk",
    "ess_tail",
    "rhat",
    "bfmi",
    "to_netcdf",
    "from_netcdf",
    "loo_pointwise",
    "relative_efficiency",
    "SUMMARY_COLUMNS",
    "summary_table",
]

#: Columns of every summary table, in order.
SUMMARY_COLUMNS = ("mean", "median", "sd", "lower", "upper", "ess_bulk", "r_hat", "ess_tail")


def _az():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    return az


def InferenceData(**groups: xr.Dataset):  # noqa: N802 - mirrors the ArviZ class name
    """Build an InferenceData from xarray Datasets."""
    return _az().InferenceData(**groups)


def make_idata(groups: dict[str, xr.Dataset]):
    """Build an InferenceData from a dict of group name to Dataset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _az().InferenceData(**groups)


def _as_chain_draw(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x = x[None, :]
    return x


def ess_bulk(x: np.ndarray) -> float:
    """Bulk effective sample size of draws shaped (chain, draw)."""
    return float(_az().ess(_as_chain_draw(x), method="bulk"))


def ess_tail(x: np.ndarray) -> float:
    """Tail effective sample size of draws shaped (chain, draw)."""
    return float(_az().ess(_as_chain_draw(x), method="tail"))


def rhat(x: np.ndarray) -> float:
    """Rank-normalized split R-hat of draws shaped (chain, draw)."""
    return float(_az().rhat(_as_chain_draw(x)))


def bfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain from the energy of draws shaped (chain, draw)."""
    return np.asarray(_az().bfmi(np.asarray(energy, dtype=float)))


def to_netcdf(idata: Any, path: str | Path) -> None:
    """Write an InferenceData to a netCDF file."""
    idata.to_netcdf(str(path), engine="h5netcdf")


def from_netcdf(path: str | Path):
    """Read an InferenceData written by :func:`to_netcdf`, fully loaded into memory."""
    az = _az()
    idata = az.from_netcdf(str(path), engine="h5netcdf")
    for g in idata.groups():
        getattr(idata, g).load()
    return idata


def relative_efficiency(log_lik: np.ndarray) -> np.ndarray:
    """Relative efficiency of the importance weights of each observation.

    ``r_eff_i = ESS(exp(log_lik_i)) / S`` with the mean-ESS of the likelihood draws over the
    chains (as ``loo::relative_eff`` in R), ``S`` the total number of draws.

    Parameters
    ----------
    log_lik : numpy.ndarray
        Shape (chain, draw, n).

    Returns
    -------
    numpy.ndarray
        Shape (n,); 1 where it cannot be computed (one chain or constant likelihood).
    """
    az = _az()
    ll = np.asarray(log_lik, dtype=float)
    c, d, n = ll.shape
    out = np.ones(n)
    if c < 2:
        return out
    for i in range(n):
        x = ll[:, :, i]
        lik = np.exp(x - np.max(x))  # ESS is invariant to the scale
        if np.ptp(lik) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                e = float(az.ess(lik, method="mean"))
            if np.isfinite(e) and e > 0:
                out[i] = e / (c * d)
    return out


def loo_pointwise(log_lik: xr.DataArray, *, dim: str) -> dict[str, Any]:
    """PSIS-LOO from a pointwise log-likelihood DataArray with dims (chain, draw, ``dim``).

    Pareto-smoothed importance sampling (Vehtari et al. 2017) per observation, with the
    relative efficiency of each observation's weights computed from the chains
    (:func:`relative_efficiency`), which sets the length of the smoothed tail.

    Returns
    -------
    dict
        ``elpd_loo``, ``se``, ``p_loo``, ``loo_i`` (array over ``dim``), ``pareto_k`` (array),
        ``r_eff`` (array), ``warning`` (bool: some k > 0.7).
    """
    from scipy.special import logsumexp

    az = _az()
    ll = np.asarray(log_lik.transpose("chain", "draw", dim).values, dtype=float)
    c, d, n = ll.shape
    r_eff = relative_efficiency(ll)
    flat = ll.reshape(c * d, n)
    loo_i = np.empty(n)
    k = np.empty(n)
    for i in range(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lw, ki = az.psislw(-flat[:, i], reff=float(r_eff[i]))
        loo_i[i] = float(logsumexp(np.asarray(lw) + flat[:, i]))
        k[i] = float(ki)
    lppd = logsumexp(flat, axis=0) - np.log(c * d)
    return {
        "elpd_loo": float(loo_i.sum()),
        "se": float(np.sqrt(n * np.var(loo_i))),
        "p_loo": float(np.sum(lppd - loo_i)),
        "loo_i": loo_i,
        "pareto_k": k,
        "r_eff": r_eff,
        "warning": bool(np.any(k > 0.7)),
    }


def summary_table(draws: Any, ci: float) -> Any:
    """Summary table of draws shaped (chain, draw), one row per name, indexed by ``quantity``.

    Parameters
    ----------
    draws : mapping of str to array
        Draws of each quantity, shape (chain, draw).
    ci : float
        Probability of the equal-tailed interval (``lower``, ``upper``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`; ESS and R-hat are NaN for non-finite draws.
    """
    import pandas as pd

    a = (1.0 - ci) / 2.0
    rows = []
    for name, x in draws.items():
        x = np.asarray(x, dtype=float)
        flat = x.ravel()
        finite = bool(np.all(np.isfinite(flat)))
        rows.append(
            {
                "quantity": name,
                "mean": float(np.mean(flat)),
                "median": float(np.median(flat)),
                "sd": float(np.std(flat, ddof=1)),
                "lower": float(np.quantile(flat, a)),
                "upper": float(np.quantile(flat, 1.0 - a)),
                "ess_bulk": ess_bulk(x) if finite else float("nan"),
                "r_hat": rhat(x) if finite else float("nan"),
                "ess_tail": ess_tail(x) if finite else float("nan"),
            }
        )
    df = pd.DataFrame(rows, columns=["quantity", *SUMMARY_COLUMNS]).set_index("quantity")
    df.attrs["ci"] = ci
    return df
