"""Sampler diagnostics shared by every fit class: chain statistics and the warnings they raise.

Every fit object (:class:`~bayesdta.inference.fit.DTAFit`,
:class:`~bayesdta.inference.multiclass.MulticlassFit`, and the classes built on them) checks
the same criteria of a clean run -- no divergences, R-hat <= :data:`RHAT_MAX`, bulk and tail
ESS >= :data:`ESS_MIN` on every reported quantity, E-BFMI >= :data:`BFMI_MIN` -- and words its
warnings the same way, each naming the option that fixes it in the caller's own terms
(:class:`OptionHints`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _arviz

__all__ = [
    "ESS_MIN",
    "RHAT_MAX",
    "BFMI_MIN",
    "ChainStats",
    "OptionHints",
    "chain_stats",
    "draws_for_ess",
    "diagnostic_record",
]

#: Smallest bulk and tail ESS of a clean run (on every reported quantity).
ESS_MIN = 400
#: Largest R-hat of a clean run.
RHAT_MAX = 1.01
#: Smallest E-BFMI of a clean run.
BFMI_MIN = 0.3


@dataclass(frozen=True)
class ChainStats:
    """Per-quantity R-hat, bulk and tail ESS, plus divergences and the smallest E-BFMI."""

    names: list[str]
    r_hat: np.ndarray
    ess_bulk: np.ndarray
    ess_tail: np.ndarray
    divergences: int
    min_bfmi: float


@dataclass(frozen=True)
class OptionHints:
    """How a warning names the options of the function that made the fit.

    Attributes
    ----------
    call : str
        The function, e.g. ``"bd.fit"`` or ``"bd.fit_multiclass"``.
    cli : bool
        Also name the CLI flags (``--draws`` ...) that set the same options.
    elsewhere : str
        Appended inside each hint, e.g. ``", or in [latent_class.sampler]"``.
    no_geometry_fix : str
        What to suggest for divergences when neither a parameterization switch nor a higher
        ``target_accept`` is available.
    """

    call: str = "bd.fit"
    cli: bool = True
    elsewhere: str = ""
    no_geometry_fix: str = "use more informative priors"

    def option(self, **values: Any) -> str:
        """``"(bd.fit(..., draws=800), CLI --draws 800)"`` for ``draws=800``."""
        args = ", ".join(f"{k}={v!r}" for k, v in values.items())
        text = f"({self.call}(..., {args})"
        if self.cli:
            flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in values.items())
            text += f", CLI {flags}"
        return text + self.elsewhere + ")"


def chain_stats(draws: Iterable[tuple[str, np.ndarray]], sample_stats: Any) -> ChainStats:
    """R-hat, bulk and tail ESS of named ``(chain, draw)`` arrays, and the sampler's statistics.

    Arrays that are not finite or constant get NaN (they never raise a warning nor win the
    extremes). With no quantity at all the record holds one NaN row named ``"-"``.
    """
    names, rh, eb, et = [], [], [], []
    for name, x in draws:
        x = np.asarray(x, dtype=float)
        names.append(name)
        if not np.all(np.isfinite(x)) or np.ptp(x) == 0 or x.shape[0] < 1:
            rh.append(np.nan), eb.append(np.nan), et.append(np.nan)
            continue
        rh.append(_arviz.rhat(x) if x.shape[0] > 1 else np.nan)
        eb.append(_arviz.ess_bulk(x))
        et.append(_arviz.ess_tail(x))
    ss = sample_stats
    div = int(ss["diverging"].sum()) if "diverging" in ss else 0
    bf = float(np.min(_arviz.bfmi(ss["energy"].values))) if "energy" in ss else float("nan")
    if not names:
        names, rh, eb, et = ["-"], [np.nan], [np.nan], [np.nan]
    return ChainStats(
        names, np.asarray(rh, float), np.asarray(eb, float), np.asarray(et, float), div, bf
    )


def draws_for_ess(draws: int, min_ess: float, cap: int, *, max_factor: float = 4.0) -> int:
    """Draws per chain expected to lift the smallest ESS above :data:`ESS_MIN`.

    ESS grows about linearly in the draws: 1.3 times the shortfall, at least 1.5 and at most
    ``max_factor`` times the draws (the automatic escalation's budget per step), rounded up to
    a hundred, never fewer than ``draws`` nor more than ``cap``.
    """
    if not np.isfinite(min_ess):
        return max(draws, min(2 * draws, cap))
    factor = 1.3 * ESS_MIN / max(min_ess, 1.0)
    new = int(np.ceil(draws * min(max(factor, 1.5), max_factor) / 100.0) * 100)
    return max(draws, min(new, cap))


def _argext(values: np.ndarray, largest: bool) -> int:
    fill = -np.inf if largest else np.inf
    v = np.where(np.isfinite(values), values, fill)
    return int(np.argmax(v) if largest else np.argmin(v))


def diagnostic_record(
    stats: ChainStats,
    *,
    draws: int,
    tune: int,
    target_accept: float,
    parameterization: str | None,
    hints: OptionHints | None = None,
) -> dict[str, Any]:
    """The diagnostics record of a run and its warnings, each naming the option that fixes it.

    Parameters
    ----------
    stats : ChainStats
        From :func:`chain_stats`.
    draws, tune, target_accept : int, int, float
        The settings of the run (draws and warm-up per chain; 0 when unknown).
    parameterization : str or None
        ``"centered"`` / ``"noncentered"`` / ``"partial"`` study effects; None when the model
        offers no choice (no parameterization switch is suggested then).
    hints : OptionHints, optional
        How to name the options (default: ``bd.fit`` and the CLI flags).

    Returns
    -------
    dict
        ``divergences``, ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``, ``min_bfmi``,
        ``worst`` (the quantity of each extreme) and ``warnings``.
    """
    hints = hints or OptionHints()
    names, rh, eb, et = stats.names, stats.r_hat, stats.ess_bulk, stats.ess_tail
    div, bf = stats.divergences, stats.min_bfmi
    i_rh, i_eb, i_et = _argext(rh, True), _argext(eb, False), _argext(et, False)
    ta = float(target_accept or 0.8)
    ta_next = 0.95 if ta < 0.95 else 0.99
    low = min(eb[i_eb], et[i_et])
    # what the user should ask for: the whole shortfall, not the escalation's 4x step
    more_draws = draws_for_ess(draws, low, cap=10**7, max_factor=np.inf) if draws else 2000
    tune_next = max(2 * int(tune or 0), 1000)
    other = None
    fixes = []
    if parameterization is not None:
        other = "centered" if parameterization == "noncentered" else "noncentered"
        fixes.append(f"parameterization={other!r} {hints.option(parameterization=other)}")
    if ta < 0.99:
        fixes.append(f"target_accept={ta_next} {hints.option(target_accept=ta_next)}")
    geometry_fix = "set " + " or ".join(fixes) if fixes else hints.no_geometry_fix
    msgs = []
    if div:
        where = f"parameterization {parameterization}, " if parameterization else ""
        msgs.append(
            f"{div} divergent transitions ({where}target_accept {ta}): "
            f"the posterior may be biased; {geometry_fix}"
        )
    if np.isfinite(rh[i_rh]) and rh[i_rh] > RHAT_MAX:
        msgs.append(
            f"R-hat {rh[i_rh]:.3f} > {RHAT_MAX} for {names[i_rh]}: chains disagree; "
            f"set tune={tune_next} and draws={more_draws} "
            f"{hints.option(tune=tune_next, draws=more_draws)}"
            + ("" if div or not fixes else f", or {geometry_fix}")
        )
    for kind, arr, i in (("bulk", eb, i_eb), ("tail", et, i_et)):
        if np.isfinite(arr[i]) and arr[i] < ESS_MIN:
            msgs.append(
                f"{kind} ESS {arr[i]:.0f} < {ESS_MIN} for {names[i]}: set draws={more_draws} "
                f"{hints.option(draws=more_draws)}"
            )
    if np.isfinite(bf) and bf < BFMI_MIN:
        alt = f" or parameterization={other!r}" if other else ""
        if other and hints.cli:
            alt += f" (CLI --parameterization {other})"
        msgs.append(
            f"E-BFMI {bf:.2f} < {BFMI_MIN}: poor exploration of the energy distribution; "
            f"set tune={tune_next} {hints.option(tune=tune_next)}{alt}"
        )
    return {
        "divergences": div,
        "max_r_hat": float(rh[i_rh]),
        "min_ess_bulk": float(eb[i_eb]),
        "min_ess_tail": float(et[i_et]),
        "min_bfmi": bf,
        "worst": {"r_hat": names[i_rh], "ess_bulk": names[i_eb], "ess_tail": names[i_et]},
        "warnings": msgs,
    }
