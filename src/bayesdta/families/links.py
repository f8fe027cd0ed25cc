"""Link functions of the model: the map from a probability to the linear-predictor scale.

The model writes ``link(se) = theta_se`` and ``link(sp) = theta_sp``; :data:`LINKS` lists the
implemented links:

``"logit"`` (default)
    ``F(x) = 1 / (1 + exp(-x))``, the standard logistic CDF (Reitsma et al. 2005; Chu & Cole
    2006). Coefficients are log odds ratios.
``"probit"``
    ``F(x) = Phi(x)``, the standard normal CDF. Probit and logit models fit binomial data
    almost equally well; probit values are about logit values / 1.7.

Both links are *symmetric*, ``F(-x) = 1 - F(x)``, which the package relies on in several
places: ``log(1 - p) = log F(-theta)`` in the likelihood, and ``link(fpr) = link(1 - sp) =
-link(sp)``, so that the summary point is ``(-mu_sp, mu_se)`` in the ``(link fpr, link se)``
plane and every SROC curve is a straight line there through that point. Asymmetric links such
as the complementary log-log are therefore deliberately not offered: with them
``link(fpr) != -link(sp)`` and the SROC construction (HSROC parameters, the curves, the AUC
and the regions) would not hold.

Every function takes the link name as ``link`` and raises :class:`~bayesdta.exceptions.SpecError`
for an unknown one. Only numpy and scipy are needed, except :func:`pt_log_inverse` (pytensor).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ..exceptions import SpecError

__all__ = [
    "LINKS",
    "check_link",
    "inverse",
    "forward",
    "log_inverse",
    "density",
    "dlog_inverse",
    "neg_d2log_inverse",
    "pt_log_inverse",
    "binomial_logpmf",
]

#: Implemented link functions (all symmetric: ``F(-x) = 1 - F(x)``).
LINKS: tuple[str, ...] = ("logit", "probit")

_LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)


def check_link(link: str) -> str:
    """Return ``link`` if it is implemented, else raise :class:`SpecError`.

    Parameters
    ----------
    link : str
        Link name.

    Returns
    -------
    str
        The same name.
    """
    if link not in LINKS:
        raise SpecError(
            f"link must be one of {list(LINKS)}, got {link!r} (asymmetric links such as "
            "cloglog are not offered: the SROC curves use link(fpr) = -link(sp))"
        )
    return link


def inverse(x: ArrayLike, link: str = "logit") -> np.ndarray:
    """Inverse link ``F(x)``: a probability from the linear predictor.

    Parameters
    ----------
    x : array_like
        Values on the link scale.
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    numpy.ndarray
        ``expit(x)`` (logit) or ``Phi(x)`` (probit).
    """
    check_link(link)
    x = np.asarray(x, dtype=float)
    if link == "logit":
        return np.asarray(special.expit(x))
    return np.asarray(special.ndtr(x))


def forward(p: ArrayLike, link: str = "logit") -> np.ndarray:
    """Link ``F^{-1}(p)``: the linear predictor of a probability.

    Parameters
    ----------
    p : array_like
        Probabilities in [0, 1] (0 and 1 map to -inf and inf).
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    numpy.ndarray
        ``logit(p)`` or ``Phi^{-1}(p)``.
    """
    check_link(link)
    p = np.asarray(p, dtype=float)
    if link == "logit":
        return np.asarray(special.logit(p))
    return np.asarray(special.ndtri(p))


def log_inverse(x: ArrayLike, link: str = "logit") -> np.ndarray:
    """``log F(x)``, stable in both tails (``log(1 - F(x)) = log F(-x)``).

    Parameters
    ----------
    x : array_like
        Values on the link scale.
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    numpy.ndarray
        ``-log(1 + exp(-x))`` or ``scipy.special.log_ndtr(x)``.
    """
    check_link(link)
    x = np.asarray(x, dtype=float)
    if link == "logit":
        return -np.logaddexp(0.0, -x)
    return np.asarray(special.log_ndtr(x))


def density(x: ArrayLike, link: str = "logit") -> np.ndarray:
    """``dF/dx``, the density of the inverse link (Jacobian of ``p = F(x)``).

    Parameters
    ----------
    x : array_like
        Values on the link scale.
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    numpy.ndarray
        ``expit(x) (1 - expit(x))`` or the standard normal density.
    """
    check_link(link)
    x = np.asarray(x, dtype=float)
    if link == "logit":
        p = special.expit(x)
        return p * (1.0 - p)
    return np.exp(-0.5 * x**2 - _LOG_SQRT_2PI)


def dlog_inverse(x: ArrayLike, link: str = "logit") -> np.ndarray:
    """``d log F(x) / dx = f(x) / F(x)``, computed stably.

    Parameters
    ----------
    x : array_like
        Values on the link scale.
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    numpy.ndarray
        ``expit(-x)`` (logit) or the inverse Mills ratio ``phi(x) / Phi(x)`` (probit).
    """
    check_link(link)
    x = np.asarray(x, dtype=float)
    if link == "logit":
        return np.asarray(special.expit(-x))
    return np.exp(-0.5 * x**2 - _LOG_SQRT_2PI - special.log_ndtr(x))


def neg_d2log_inverse(x: ArrayLike, link: str = "logit") -> np.ndarray:
    """``-d^2 log F(x) / dx^2`` (non-negative: ``log F`` is concave for both links).

    Parameters
    ----------
    x : array_like
        Values on the link scale.
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    numpy.ndarray
        ``expit(x) expit(-x)`` (logit) or ``h(x) (x + h(x))`` with ``h = phi / Phi``
        (probit).
    """
    check_link(link)
    x = np.asarray(x, dtype=float)
    if link == "logit":
        p = special.expit(x)
        return p * (1.0 - p)
    h = dlog_inverse(x, link)
    return np.clip(h * (x + h), 0.0, None)


def pt_log_inverse(x: Any, link: str = "logit") -> Any:
    """``log F(x)`` as a pytensor expression (for the model likelihood).

    Parameters
    ----------
    x : pytensor tensor
        Linear predictor.
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    pytensor tensor
        ``-softplus(-x)`` (logit) or ``log Phi(x)`` (probit; within 1e-12 relative and 1e-10
        absolute of ``scipy.special.log_ndtr`` for any ``x``, see :func:`_pt_log_ndtr`).
    """
    check_link(link)
    import pytensor.tensor as pt

    if link == "logit":
        return -pt.softplus(-x)
    return _pt_log_ndtr(pt, x)


#: Below this argument ``log Phi`` is its asymptotic series (erfc would underflow near -37).
_LOG_NDTR_TAIL = -20.0


def _pt_log_ndtr(pt: Any, x: Any) -> Any:
    """``log Phi(x)`` from ``erfc`` and elementary functions only.

    ``log1p(-erfc(x / sqrt 2) / 2)`` for ``x >= 0``, ``log(erfc(-x / sqrt 2) / 2)`` for
    ``-20 <= x < 0`` and the asymptotic series ``-x^2/2 - log(-x) - log(2 pi)/2 + log(1 - 1/x^2
    + 3/x^4 - 15/x^6 + 105/x^8)`` below (truncation error < 1e-10 there). PyMC's
    ``normal_lcdf`` uses ``erfcx`` instead, which PyTensor's numba backend reaches through a
    scipy function pointer of the running process: such machine code cannot be kept in the disk
    cache (:func:`bayesdta.inference.compile_cache.not_storable`); this form can. Each branch
    gets its argument clipped to its own range, so the branch not taken stays finite (no NaN
    gradients through the switch).
    """
    r2 = np.sqrt(2.0)
    upper = pt.log1p(-0.5 * pt.erfc(pt.maximum(x, 0.0) / r2))
    middle = pt.log(0.5 * pt.erfc(-pt.clip(x, _LOG_NDTR_TAIL, 0.0) / r2))
    z = pt.minimum(x, _LOG_NDTR_TAIL)
    z2 = 1.0 / (z * z)
    series = 1.0 + z2 * (-1.0 + z2 * (3.0 + z2 * (-15.0 + 105.0 * z2)))
    tail = -0.5 * z * z - pt.log(-z) - 0.5 * np.log(2.0 * np.pi) + pt.log(series)
    return pt.switch(x >= 0.0, upper, pt.switch(x >= _LOG_NDTR_TAIL, middle, tail))


def binomial_logpmf(
    k: ArrayLike, n: ArrayLike, theta: ArrayLike, link: str = "logit"
) -> np.ndarray:
    """Log Binomial(k | n, F(theta)), F the inverse link, stable for large ``|theta|``.

    Parameters
    ----------
    k, n : array_like
        Successes and trials.
    theta : array_like
        Success probability on the link scale.
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    numpy.ndarray
        The log probability, broadcast over the arguments.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    return (
        special.gammaln(n + 1.0)
        - special.gammaln(k + 1.0)
        - special.gammaln(n - k + 1.0)
        + k * log_inverse(theta, link)
        + (n - k) * log_inverse(-np.asarray(theta, dtype=float), link)
    )
