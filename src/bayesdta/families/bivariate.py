r"""The one model builder: bivariate (two-level) and three-level binomial models, meta-regression.

Row r is one 2x2 table: model m(r) evaluated in study s(r); n1 = TP + FN, n0 = FP + TN.

.. math::

    TP_r &\\sim \\mathrm{Binomial}(n1_r, F(\\theta_{r1})), \\quad
    TN_r \\sim \\mathrm{Binomial}(n0_r, F(\\theta_{r2})) \\\\
    \\theta_r &= (x_r^{se}\\beta^{se},\\; x_r^{sp}\\beta^{sp}) + u_{s(r)} + v_r \\\\
    u_s &\\sim \\mathrm{MVN}_2(0, \\Sigma_{between}), \\quad
    v_r \\sim \\mathrm{MVN}_2(0, \\Sigma_{within}) \\text{ (three levels only)}

Without covariates, :math:`\\beta^{se}` and :math:`\\beta^{sp}` are the intercepts
``mu_sensitivity`` and ``mu_specificity`` (Chu & Cole 2006; Reitsma et al. 2005, with the exact
binomial likelihood). ``F`` is the inverse link: the logistic function (``link="logit"``,
default) or the standard normal CDF (``link="probit"``), see :mod:`bayesdta.links`. Each 2x2
correlation is parameterized as rho = 2 B - 1 with B ~ Beta(eta, eta), which is exactly the
LKJ(eta) distribution for a 2x2 correlation matrix.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..data.tables import DTAData
from ..exceptions import DTADataError, SpecError
from .base import Family, register_family
from .links import LINKS, pt_log_inverse
from .priors import DEFAULT_PRIORS, PRIOR_RATIONALE, Prior, resolve_priors

__all__ = ["ModelSpec", "Design", "EffectLaw", "build_model", "make_design", "prior_predictive"]

OUTCOMES = ("sensitivity", "specificity")
#: SDs and correlations of the random effects (between studies; ``_within``: within studies).
SCALE_PARAMETERS = (
    "tau_sensitivity",
    "tau_specificity",
    "rho",
    "tau_within_sensitivity",
    "tau_within_specificity",
    "rho_within",
)
#: The model's scalar hyperparameters, in reporting order (diagnostics are computed on these).
PARAMETER_NAMES = ("mu_sensitivity", "mu_specificity", *SCALE_PARAMETERS)


@dataclass(frozen=True)
class ModelSpec:
    """What to fit: levels, covariates, priors, parameterization.

    Parameters
    ----------
    levels : {2, 3} or None
        Random-effect levels. ``None`` (default): three when some study has several rows
        (study level plus row-within-study level), else two. ``2`` on clustered data treats
        every row as its own study (the "rows independent" analysis), kept for comparison.
    formula : str, optional
        Meta-regression formula (formulaic syntax, right-hand side only, e.g.
        ``"~ backbone + dimensionality"``) used for both outcomes.
    formula_sensitivity, formula_specificity : str, optional
        Separate formulas per outcome (override ``formula``).
    reference : mapping, optional
        Reference level per categorical covariate, e.g. ``{"backbone": "ResNet"}``.
    priors : mapping, optional
        Overrides of :data:`bayesdta.priors.DEFAULT_PRIORS`.
    tau_by : str, optional
        Categorical covariate whose levels get their own between-study SDs.
    parameterization : {"auto", "noncentered", "centered"}
        How random effects are sampled. ``"auto"`` (default) chooses per level by how much the
        data say about each effect (see :func:`choose_parameterization`): centered where a
        level's effects are well informed by their own data (large studies), non-centered where
        they are not (small studies; the study level of a three-level model when the study
        effect is thin compared with the within-study spread).
    link : {"logit", "probit"}
        Link function of sensitivity and specificity (default ``"logit"``); see
        :mod:`bayesdta.links`. All summaries (summary point, SROC, AUC, regions, predictive
        draws) use the inverse of this link. Only symmetric links are offered.
    random_effects : str
        The model family of the random effects, by its registered name
        (:func:`bayesdta.families.base.get_family`): ``"normal"`` (default, bivariate normal)
        or ``"t"`` (bivariate Student-t study effects, :mod:`bayesdta.families.robust`, two
        levels; adds the prior ``nu``).
    """

    levels: int | None = None
    formula: str | None = None
    formula_sensitivity: str | None = None
    formula_specificity: str | None = None
    reference: Mapping[str, str] = field(default_factory=dict)
    priors: Mapping[str, Any] = field(default_factory=dict)
    tau_by: str | None = None
    parameterization: Literal["auto", "noncentered", "centered"] = "auto"
    link: str = "logit"
    random_effects: str = "normal"

    def __post_init__(self) -> None:
        from .base import FAMILIES, family_names

        if self.random_effects not in family_names("2x2"):
            raise SpecError(
                f"random_effects must be one of {family_names('2x2')}, got {self.random_effects!r}"
            )
        if self.link not in LINKS:
            raise SpecError(
                f"link must be one of {list(LINKS)}, got {self.link!r} (asymmetric links such "
                "as cloglog are not offered: the SROC curves use link(fpr) = -link(sp))"
            )
        if self.levels not in (None, 2, 3):
            raise SpecError(f"levels must be 2 or 3, got {self.levels!r}")
        if self.parameterization not in ("auto", "noncentered", "centered"):
            raise SpecError(
                "parameterization must be 'auto', 'noncentered' or 'centered', "
                f"got {self.parameterization!r}"
            )
        defaults = FAMILIES[self.random_effects].default_priors
        object.__setattr__(self, "priors", resolve_priors(self.priors, defaults))
        object.__setattr__(self, "reference", dict(self.reference))

    def formulas(self) -> tuple[str, str]:
        """The right-hand-side formulas for sensitivity and specificity."""
        base = self.formula or "~ 1"
        return (self.formula_sensitivity or base, self.formula_specificity or base)

    def resolved_levels(self, data: DTAData) -> int:
        """Number of levels used for ``data``."""
        if self.levels is not None:
            return self.levels
        return 3 if data.has_clusters else 2

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed."""
        from .base import get_family

        if "priors" in changes or "random_effects" in changes:
            # keep the user's priors (those that differ from this family's defaults) that the
            # new family knows, then apply the changes
            old = get_family(self.random_effects).default_priors
            new = get_family(changes.get("random_effects", self.random_effects)).default_priors
            merged = {k: v for k, v in self.priors.items() if v != old.get(k) and k in new}
            merged.update(changes.get("priors") or {})
            changes["priors"] = merged
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Serializable form (used when saving fits and writing reports)."""
        return {
            "levels": self.levels,
            "formula": self.formula,
            "formula_sensitivity": self.formula_sensitivity,
            "formula_specificity": self.formula_specificity,
            "reference": dict(self.reference),
            "priors": {k: p.to_dict() for k, p in self.priors.items()},
            "tau_by": self.tau_by,
            "parameterization": self.parameterization,
            "link": self.link,
            "random_effects": self.random_effects,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """Inverse of :meth:`to_dict` (dicts without ``link``, from older versions, get logit)."""
        return cls(**dict(d))

    def describe(self) -> str:
        """Human-readable model and priors, with the rationale of every default."""
        f_se, f_sp = self.formulas()
        lines = [
            f"Bivariate binomial model ({self.link} link, exact binomial likelihood)",
            f"  levels: {self.levels or 'auto (3 when a study has several rows, else 2)'}",
            f"  {self.link} sensitivity ~ {f_se.lstrip('~ ').strip()} + study effect"
            + (" + row effect" if self.levels != 2 else ""),
            f"  {self.link} specificity ~ {f_sp.lstrip('~ ').strip()} + study effect"
            + (" + row effect" if self.levels != 2 else ""),
            f"  parameterization: {self.parameterization}",
        ]
        if self.tau_by:
            lines.append(f"  between-study SDs by level of: {self.tau_by}")
        from .base import get_family

        family = get_family(self.random_effects)
        if self.random_effects != "normal":
            lines.append(f"  random effects: {family.description}")
        lines.append("Priors:")
        for k, p in self.priors.items():
            tag = "" if p == family.default_priors.get(k) else "  [user]"
            lines.append(f"  {k:<24} {p!s:<32}{tag}")
            if not tag:
                lines.append(f"      ({family.prior_rationale[k]})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()


# ------------------------------------------------------------------------------ design
@dataclass(frozen=True)
class Design:
    """Design matrices of one outcome pair, with how to map coefficients back.

    Attributes
    ----------
    X : dict
        ``{"sensitivity": array (rows, p_se), "specificity": array (rows, p_sp)}`` on the
        internal scale: every model-matrix column minus its value at the reference point
        (reference levels, continuous covariates at their means), divided by ``scale``.
    columns : dict
        Column names per outcome, formulaic's naming (``Intercept``, ``backbone[T.DenseNet]``,
        ``np.log(age)``, ``age:backbone[T.DenseNet]``).
    scaling : dict
        For each continuous covariate (a numeric column not wrapped in ``C()``), its (mean, SD)
        over the rows in the fit: the mean is the covariate's value at the reference point.
    levels : dict
        For each categorical covariate, its levels (reference first).
    formulas : dict
        The formulas used.
    variables : list of str
        The data columns the formulas use.
    center, scale : dict
        Per outcome, the value of every model-matrix column at the reference point and its
        SD over the rows in the fit (1 for 0/1 indicator columns and for the intercept).
        ``internal = (column - center) / scale``, so a coefficient per unit of its column is
        the internal coefficient divided by ``scale``.
    """

    X: dict[str, np.ndarray]
    columns: dict[str, list[str]]
    scaling: dict[str, tuple[float, float]]
    levels: dict[str, list[str]]
    formulas: dict[str, str]
    variables: list[str]
    center: dict[str, np.ndarray] = field(default_factory=dict)
    scale: dict[str, np.ndarray] = field(default_factory=dict)
    model_specs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Columns whose coefficients take the prior of the summary point (``mu_<outcome>``)
    #: rather than that of a regression coefficient (``beta_<outcome>``): the intercept, or
    #: one column per test in the no-intercept coding of :mod:`bayesdta.families.comparative`.
    intercepts: tuple[str, ...] = ("Intercept",)

    @property
    def has_covariates(self) -> bool:
        """True when either outcome has more than an intercept."""
        return any(len(c) > 1 for c in self.columns.values())

    def column_scale(self, outcome: str) -> dict[str, float]:
        """SD used to standardize each column of ``outcome`` (1 when not standardized)."""
        cols = self.columns[outcome]
        s = self.scale.get(outcome)
        if s is None:
            return {c: 1.0 for c in cols}
        return {c: float(v) for c, v in zip(cols, s, strict=False)}

    def units(self) -> dict[str, str]:
        """The unit of every reported coefficient, keyed ``beta_<outcome>[<column>]``.

        Every coefficient is reported per unit of its model-matrix column on the link scale:
        ``age``: per year (the column's unit); ``np.log(age)``: per unit of log(age);
        ``age:year``: per unit of the product; ``backbone[T.DenseNet]``: DenseNet minus the
        reference level; ``age:backbone[T.DenseNet]``: per unit of age, DenseNet minus the
        reference level's slope.
        """
        out = {}
        for o in OUTCOMES:
            for c in self.columns[o]:
                if c == "Intercept":
                    continue
                out[f"beta_{o}[{c}]"] = _column_unit(c, self.levels)
        return out

    def encode(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Design matrices for new covariate values, with the fitted coding and scaling."""
        if not self.model_specs:
            raise SpecError("this design has no formula state to encode new values with")
        prepared = _prepare_frame(frame, self.variables, self.levels)
        X = {}
        for o in OUTCOMES:
            raw = self.model_specs[o].get_model_matrix(prepared, na_action="raise")
            raw = raw.reindex(columns=self.columns[o], fill_value=0.0)
            X[o] = (np.asarray(raw, dtype=float) - self.center[o]) / self.scale[o]
        return X


def _column_unit(column: str, levels: Mapping[str, list[str]]) -> str:
    parts = []
    for factor in column.split(":"):
        m = re.fullmatch(r"(.+)\[T\.(.+)\]", factor)
        if m:
            var = re.sub(r"^C\((\w+).*\)$", r"\1", m.group(1))
            ref = levels.get(var, ["reference"])[0]
            parts.append(f"{m.group(1)} {m.group(2)} vs {ref}")
        else:
            parts.append(f"per unit of {factor}")
    return "; ".join(parts)


def _prepare_frame(
    frame: pd.DataFrame, variables: Sequence[str], levels: Mapping[str, list[str]]
) -> pd.DataFrame:
    """The formula variables: categoricals with their levels (reference first), numbers raw."""
    out = pd.DataFrame(index=range(len(frame)))
    for v in variables:
        if v in levels:
            vals = frame[v].astype(object).map(_level_str)
            unknown = sorted(set(vals) - set(levels[v]))
            if unknown:
                row = int(np.flatnonzero(vals.isin(unknown).to_numpy())[0])
                raise DTADataError(
                    f"row {row + 1}, column {v}: unknown level {unknown[0]!r}; "
                    f"known levels: {levels[v]}"
                )
            out[v] = pd.Categorical(vals, categories=levels[v])
        else:
            out[v] = frame[v].astype(float).to_numpy()
    return out


def _level_str(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x)


#: Names formulaic's evaluation namespace provides (numpy as ``np``, ``C``, ``I``, ``center``...).
_FORMULA_NAMESPACE = frozenset(
    {"np", "numpy", "I", "C", "Q", "center", "scale", "standardize", "log", "log2", "log10"}
    | {"exp", "exp2", "exp10", "poly", "bs", "cr", "cs", "cc", "lag", "contr", "hashed"}
    | {"Treatment", "Sum", "Helmert", "Diff", "Poly", "True", "False", "None"}
    | set(dir(__import__("builtins")))
)


class _Columns:
    """Membership in the data's columns; without columns, any name outside the namespace."""

    def __init__(self, columns: Sequence[str] | None) -> None:
        self.columns = None if columns is None else [str(c) for c in columns]

    def __contains__(self, name: object) -> bool:
        if self.columns is None:
            return isinstance(name, str) and name.isidentifier() and name not in _FORMULA_NAMESPACE
        return name in self.columns

    def __iter__(self):
        return iter(self.columns or ())


def formula_variables(
    formula: str, columns: Sequence[str] | None = None
) -> tuple[list[str], set[str]]:
    """The data columns a formula uses, and those it wraps in ``C()`` (categorical).

    Any formulaic syntax is accepted (``np.log(x)``, ``I(x**2)``, ``C(x)``, ``center(x)``,
    ``x:y``, ``x*y``); every name of a factor that is neither a column nor in formulaic's
    namespace is reported as not a column.

    Parameters
    ----------
    formula : str
        Right-hand-side formula.
    columns : sequence of str, optional
        The data's columns. None (e.g. an analysis spec before its data are read): every name
        outside formulaic's namespace counts as a column.

    Returns
    -------
    tuple
        ``(names, categorical)``: the columns in order of use, and those wrapped in ``C()``.
    """
    import ast

    from formulaic import Formula

    try:
        f = Formula(formula)
    except Exception as exc:  # formulaic raises several parser exception types
        raise SpecError(f"cannot parse formula {formula!r}: {exc}") from None
    cols = _Columns(columns)
    names: list[str] = []
    categorical: set[str] = set()
    unknown: list[str] = []

    def use(name: str) -> None:
        if name not in names:
            names.append(name)

    for term in f.rhs if hasattr(f, "rhs") else f:
        for factor in term.factors:
            expr = str(factor.expr)
            method = getattr(factor.eval_method, "name", str(factor.eval_method)).upper()
            if method == "LITERAL" or expr in ("0", "1"):
                continue
            if method == "LOOKUP" or expr in cols:
                # a plain name is a column lookup, even one that shadows a builtin ("type")
                known = expr in cols or (cols.columns is None and expr.isidentifier())
                (use if known else unknown.append)(expr)
                continue
            try:
                tree = ast.parse(expr, mode="eval")
            except SyntaxError:
                raise SpecError(f"cannot parse formula term {expr!r} of {formula!r}") from None
            for node in ast.walk(tree):
                if isinstance(node, ast.Name):
                    if node.id in cols:
                        use(node.id)
                    elif node.id not in _FORMULA_NAMESPACE:
                        unknown.append(node.id)
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
                    arg = node.args[0]
                    if node.func.id == "Q" and isinstance(arg, ast.Constant):
                        (use if str(arg.value) in cols else unknown.append)(str(arg.value))
                    if node.func.id == "C" and isinstance(arg, ast.Name) and arg.id in cols:
                        categorical.add(arg.id)
    if unknown:
        raise SpecError(
            f"formula {formula!r} uses {unknown[0]!r}, which is not a column of the data; "
            f"covariates are {[c for c in cols if c not in ('TP', 'FP', 'FN', 'TN')]}"
        )
    return names, categorical


def make_design(
    data: DTAData, spec: ModelSpec, *, weights: Sequence[float] | np.ndarray | None = None
) -> Design:
    """Validate covariates and build the design matrices for ``data`` under ``spec``.

    Formulas use formulaic's syntax (right-hand side only): ``~ age + backbone``,
    ``~ np.log(age)``, ``~ I(age**2)``, ``~ C(year)``, ``~ center(age)``, ``~ age * backbone``.

    Which covariates are categorical (the rule is explicit, whatever the number of values):
    string, boolean and categorical columns, and any column wrapped in ``C()``; every other
    numeric column is continuous, also when it takes only two values (``~ C(x)`` treats a 0/1
    column as two levels; as a continuous 0/1 column its coefficient is the same difference).
    Categorical covariates use treatment coding with the first level (sorted; or
    ``spec.reference``) as reference.

    Every model-matrix column is centred at its value at the reference point (reference levels,
    continuous covariates at their means over the rows in the fit), so that the intercept is
    the summary point there, and non-indicator columns are divided by their SD before they enter
    the model (the prior of a coefficient is per SD of its column). Coefficients are reported per
    unit of their column (:meth:`Design.units`). Raises :class:`DTADataError` /
    :class:`SpecError` on missing values, unknown reference levels, constant covariates and
    collinear designs.

    Parameters
    ----------
    data : DTAData
        The table.
    spec : ModelSpec
        Formulas, reference levels.
    weights : array, optional
        Per-row likelihood weights: means, SDs and the reference point use the rows with weight
        > 0 only (as a fit of that subset would); rows with weight 0 are still encoded.
    """
    frame = data.frame
    active = np.ones(data.n_rows, dtype=bool) if weights is None else np.asarray(weights) > 0
    if not active.any():
        active = np.ones(data.n_rows, dtype=bool)
    f_se, f_sp = spec.formulas()
    formulas = {"sensitivity": f_se, "specificity": f_sp}
    variables: list[str] = []
    forced: set[str] = set()
    for f in formulas.values():
        names, cat = formula_variables(f, [str(c) for c in frame.columns])
        forced |= cat
        for v in names:
            if v not in variables:
                variables.append(v)
    if spec.tau_by and spec.tau_by not in frame.columns:
        raise SpecError(f"tau_by column {spec.tau_by!r} is not a column of the data")
    for v in spec.reference:
        if v not in variables:
            raise SpecError(f"reference level given for {v!r}, which is not in the formula")
    levels: dict[str, list[str]] = {}
    scaling: dict[str, tuple[float, float]] = {}
    for v in variables:
        col = frame[v]
        missing = col.isna().to_numpy().copy()
        if isinstance(col.dtype, pd.StringDtype) or col.dtype == object:
            missing |= col.astype(object).map(lambda x: isinstance(x, str) and x.strip() == "")
        if missing.any():
            row = int(np.flatnonzero(missing)[0])
            raise DTADataError(f"row {row + 1}, column {v}: missing covariate value")
        is_numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if is_numeric and v not in forced:
            x = col.astype(float).to_numpy()
            sd = float(np.std(x[active], ddof=1)) if active.sum() > 1 else 0.0
            if not sd > 0:
                raise DTADataError(f"column {v}: covariate is constant; drop it from the formula")
            scaling[v] = (float(np.mean(x[active])), sd)
        else:
            order = sorted(pd.unique(col), key=lambda x: (str(type(x)), x))
            lv = list(dict.fromkeys(_level_str(x) for x in order))
            if len(lv) < 2:
                raise DTADataError(
                    f"column {v}: covariate is constant (only level {lv[0]!r}); "
                    "it cannot be estimated — drop it from the formula"
                )
            ref = spec.reference.get(v)
            if ref is not None:
                ref = _level_str(ref)
                if ref not in lv:
                    raise SpecError(f"reference level {ref!r} of {v} is not among its levels {lv}")
                lv = [ref] + [x for x in lv if x != ref]
            levels[v] = lv

    from formulaic import model_matrix

    prepared = _prepare_frame(frame, variables, levels)
    point = {v: levels[v][0] if v in levels else scaling[v][0] for v in variables}
    point_frame = _prepare_frame(pd.DataFrame(point, index=[0]), variables, levels)
    X: dict[str, np.ndarray] = {}
    columns: dict[str, list[str]] = {}
    centers: dict[str, np.ndarray] = {}
    scales: dict[str, np.ndarray] = {}
    specs: dict[str, Any] = {}
    for outcome, f in formulas.items():
        try:
            with np.errstate(all="ignore"):  # non-finite values are reported below
                mm = model_matrix(f, prepared, na_action="ignore", context={})
            ref_row = mm.model_spec.get_model_matrix(point_frame, na_action="raise")
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SpecError(f"formula {f!r} could not be built: {msg}") from None
        cols = [str(c) for c in mm.columns]
        if "Intercept" not in cols:
            raise SpecError(f"formula {f!r} has no intercept; the summary point needs one")
        raw = np.asarray(mm, dtype=float)
        if not np.all(np.isfinite(raw)):
            row, j = (int(a[0]) for a in np.nonzero(~np.isfinite(raw)))
            raise DTADataError(
                f"row {row + 1}: column {cols[j]!r} of formula {f!r} is not finite "
                f"(e.g. the log of a value <= 0)"
            )
        center = np.array(ref_row.reindex(columns=cols, fill_value=0.0), dtype=float)[0].copy()
        scale = np.ones(len(cols))
        for j, c in enumerate(cols):
            x = raw[active, j]
            indicator = np.all((raw[:, j] == 0) | (raw[:, j] == 1))
            if c == "Intercept":
                center[j] = 0.0
            elif not indicator and x.size > 1 and np.std(x, ddof=1) > 0:
                scale[j] = float(np.std(x, ddof=1))
        x = (raw - center) / scale
        rank = np.linalg.matrix_rank(x)
        if rank < x.shape[1]:
            # name a column that is a combination of the others
            for j in range(x.shape[1]):
                others = np.delete(x, j, axis=1)
                if np.linalg.matrix_rank(others) == rank:
                    raise DTADataError(
                        f"collinear design for {outcome}: column {cols[j]!r} of formula {f!r} "
                        f"is a linear combination of the others {[c for c in cols if c != cols[j]]}"
                    )
        if x.shape[1] >= data.n_rows:
            raise DTADataError(
                f"formula {f!r} has {x.shape[1]} coefficients for only {data.n_rows} rows"
            )
        X[outcome] = x
        columns[outcome] = cols
        centers[outcome] = center
        scales[outcome] = scale
        specs[outcome] = mm.model_spec
    return Design(X, columns, scaling, levels, formulas, variables, centers, scales, specs)


# ------------------------------------------------------------------------------ builder
@dataclass
class BuiltModel:
    """A PyMC model with what is needed to refit it with new data."""

    model: Any
    data_values: dict[str, np.ndarray]
    structure_key: str
    levels: int
    design: Design
    group_labels: list[str] = field(default_factory=list)
    n_rows: int = 0
    n_groups: int = 0
    tau_levels: list[str] = field(default_factory=list)
    #: Whether the compiled model may be looked up in and stored in the on-disk cache (an
    #: opt-out; code that calls functions by process-specific address, e.g. the probit link's
    #: erfcx, is never stored: :func:`bayesdta.inference.compile_cache.not_storable`).
    disk_cache: bool = True
    #: Set by :func:`build_model` when the model has a log density written for numba
    #: (:mod:`bayesdta.families.bivariate_logp`): ``{"kind": ..., "families": {name: dist}}``.
    numba_logp: dict[str, Any] | None = None


def _bucket(n: int, step: int = 16) -> int:
    """Smallest multiple of ``step`` that is >= n (padding size of compiled models)."""
    return int(-(-n // step) * step)


def _prior_data(pm, name: str, prior: Prior, data_values: dict, size: int | None = None):
    """Register the prior's numbers as pm.Data and return them as tensors by parameter name."""
    out = {}
    for p, v in prior.params:
        key = f"prior__{name}__{p}"
        val = np.full(size, v) if size is not None else np.asarray(v, dtype=float)
        data_values[key] = val
        out[p] = pm.Data(key, val)
    return out


def _scale_rv(pm, name: str, prior: Prior, data_values: dict, dims=None):
    kw = _prior_data(pm, name, prior, data_values)
    dist = getattr(pm, prior.dist)
    return dist(name, **kw, dims=dims)


def _corr_rv(pm, name: str, prior: Prior, data_values: dict):
    kw = _prior_data(pm, name, prior, data_values)
    b = pm.Beta(f"{name}_beta", alpha=kw["eta"], beta=kw["eta"])
    return pm.Deterministic(name, 2.0 * b - 1.0)


@dataclass
class EffectLaw:
    """Hook of other families: the law of the study effects (default: bivariate normal).

    A family that changes the study effects (e.g. the Student-t effects of
    :mod:`bayesdta.families.robust`) passes ``effect_law(pm, pt, data_, priors, size, levels)``
    to :func:`build_model`; it is called inside the model (``data_(name, value)`` registers
    model data, ``size`` is the number of effects: rows with two levels, studies with three)
    and returns an ``EffectLaw``. The bivariate effects are written as the effect on
    sensitivity and the conditional effect on specificity given it
    (:func:`_bivariate_effects`), so any elliptical law is given by

    * ``first(name, mu, sigma, dims)``: the distribution of the first component (location
      ``mu``, scale ``sigma``); default ``pm.Normal``;
    * ``second_factor(z1)``: the multiplier of the conditional scale of the second component
      given the standardized first one ``z1``; default 1;
    * ``second(name, mu, sigma, dims)``: the distribution of the second component given the
      first (location, scale); default ``pm.Normal``;
    * ``done(z1, z2)``: called with the standardized components (``z1^2 + z2^2`` is the
      Mahalanobis distance of the effect), e.g. to record per-effect weights;
    * ``scale``: per-effect multipliers (tensor of ``size``) of the between-study SDs, a normal
      scale mixture with explicit weights (used with three levels, where the study means of
      :func:`_three_level_effects` are normal given the weights).
    """

    first: Any = None
    second: Any = None
    second_factor: Any = None
    done: Any = None
    scale: Any = None


def _bivariate_effects(
    pm, pt, name, size_dim, mean_se, mean_sp, tau_se, tau_sp, rho, weight, law=None
):
    """Bivariate normal effects around (mean_se, mean_sp) with SDs (tau_se, tau_sp) and corr rho.

    Each effect pair is written as the effect on sensitivity and the conditional effect on
    specificity given it (an exact factorization of the bivariate normal), and each of the two is
    *partially centered* with a per-effect weight ``w`` in [0, 1] (Papaspiliopoulos, Roberts &
    Skold 2007; Gorinova, Moore & Hoffman 2020): for an effect ``e ~ N(m, s)`` the sampled
    parameter is ``p ~ N(w m, s^w)`` and ``e = m + s^(1 - w) (p - w m)``, which has the same
    distribution N(m, s) for every ``w``. ``w = 1`` is the centered parameterization (the effect
    itself is the parameter), ``w = 0`` the non-centered one (a standard normal scaled by the SD).
    ``weight`` is a (groups, 2) tensor (registered as data, so that one compiled model serves
    every choice, see :func:`choose_parameterization`). The same construction holds for any
    location-scale law in place of the normal: ``law`` (an :class:`EffectLaw`) gives other
    elliptical laws (e.g. the bivariate t, whose conditional is a t with a scale depending on
    the first component).
    """
    law = law or EffectLaw()
    first = law.first or (lambda n, mu, sd, dims: pm.Normal(n, mu, sd, dims=dims))
    second = law.second or (lambda n, mu, sd, dims: pm.Normal(n, mu, sd, dims=dims))
    w_se, w_sp = weight[:, 0], weight[:, 1]
    p_se = first(f"{name}_sensitivity", w_se * mean_se, tau_se**w_se, size_dim)
    e_se = mean_se + tau_se ** (1.0 - w_se) * (p_se - w_se * mean_se)
    cond_mean = mean_sp + rho * tau_sp / tau_se * (e_se - mean_se)
    cond_sd = tau_sp * pt.sqrt(1.0 - rho**2)
    if law.second_factor is not None or law.done is not None:
        z1 = (p_se - w_se * mean_se) / tau_se**w_se
    if law.second_factor is not None:
        cond_sd = cond_sd * law.second_factor(z1)
    p_sp = second(f"{name}_specificity", w_sp * cond_mean, cond_sd**w_sp, size_dim)
    e_sp = cond_mean + cond_sd ** (1.0 - w_sp) * (p_sp - w_sp * cond_mean)
    if law.done is not None:
        z2 = (p_sp - w_sp * cond_mean) / cond_sd**w_sp
        if law.second_factor is not None:
            z2 = z2 * law.second_factor(z1)
        law.done(z1, z2)
    return e_se, e_sp


#: Public name of the partially centered bivariate normal effects (used by other families).
bivariate_effects = _bivariate_effects


def _three_level_effects(pm, pt, gidx, gsize, n_groups, lp, between, within, weight, scale=None):
    """Row parameters of the three-level model, parameterized by study means and deviations.

    The model is ``theta_r = x_r beta + u_s + v_r`` with ``u_s ~ MVN(0, Sigma_b)`` and
    ``v_r ~ MVN(0, Sigma_w)``. Only ``u_s + v_r`` enters the likelihood, so sampling ``u`` and
    ``v`` directly leaves a ridge (for a study with one row, only their sum is identified). The
    same distribution is written here as

    * the study mean ``m_s = u_s + mean_r(v_r) ~ MVN(0, Sigma_b + Sigma_w / n_s)`` (identified
      by all rows of the study; ``n_s`` its number of rows), around the mean linear predictor of
      the study's rows, partially centered with per-study weights ``weight`` (see
      :func:`_bivariate_effects`), and
    * the within-study deviations ``v_r - mean_r(v_r) = L_w (z_r - mean_r(z_r))`` with
      ``z_r ~ N(0, I)`` (``L_w`` the Cholesky factor of ``Sigma_w``).

    For Gaussian effects the mean and the deviations are independent, so this is an exact
    reparameterization of the same model; the study-mean component of ``z`` does not enter
    ``theta`` and has the standard-normal posterior, which NUTS samples trivially.

    ``scale`` (per-study multipliers of the between-study SDs, optional) makes the study effects
    a normal scale mixture; given the multipliers the study means and deviations are still
    normal and independent, so the same reparameterization is exact.
    """
    lp_se, lp_sp = lp
    tb_se, tb_sp, rho = between
    if scale is not None:
        # normal scale mixture of the study effects (e.g. Student-t): u_s ~ MVN(0, Sigma_b c_s^2)
        # given per-study multipliers c_s; the deviations stay normal
        tb_se, tb_sp = tb_se * scale, tb_sp * scale
    tw_se, tw_sp, rho_w = within

    def group_mean(x):
        return pt.inc_subtensor(pt.zeros(n_groups)[gidx], x) / gsize

    lpbar_se, lpbar_sp = group_mean(lp_se), group_mean(lp_sp)
    s11 = tb_se**2 + tw_se**2 / gsize
    s22 = tb_sp**2 + tw_sp**2 / gsize
    s12 = rho * tb_se * tb_sp + rho_w * tw_se * tw_sp / gsize
    sd_se, sd_sp = pt.sqrt(s11), pt.sqrt(s22)
    m_se, m_sp = _bivariate_effects(
        pm, pt, "study", "group", lpbar_se, lpbar_sp, sd_se, sd_sp, s12 / (sd_se * sd_sp), weight
    )
    z = pm.Normal("z_row", 0.0, 1.0, dims=("row", "outcome"))
    dz_se = z[:, 0] - group_mean(z[:, 0])[gidx]
    dz_sp = z[:, 1] - group_mean(z[:, 1])[gidx]
    d_se = tw_se * dz_se
    d_sp = tw_sp * (rho_w * dz_se + pt.sqrt(1.0 - rho_w**2) * dz_sp)
    theta_se = m_se[gidx] + (lp_se - lpbar_se[gidx]) + d_se
    theta_sp = m_sp[gidx] + (lp_sp - lpbar_sp[gidx]) + d_sp
    return theta_se, theta_sp


#: Informativeness (share of a study effect's posterior precision from its own data) above
#: which ``"auto"`` calls a level's parameterization "centered" in messages (and below
#: 1 - this, "non-centered"); in between it is "partially centered".
_LABEL_CUT = 0.8
#: ``"auto"`` uses the moment estimate of the between-effect variance times
#: ``chi2.ppf(_TAU2_ALPHA, k - p) / (k - p)`` (``k`` effects, ``p`` coefficients): a lower
#: 99% bound of the variance, treating ``Q`` as chi-square with ``k - p`` degrees of freedom.
_TAU2_ALPHA = 0.01


def _link_moments(x: np.ndarray, n: np.ndarray, link: str) -> tuple[np.ndarray, np.ndarray]:
    """Observed link-scale proportion and its delta-method variance (0.5 added to both cells)."""
    from scipy.stats import norm

    p = (x + 0.5) / (n + 1.0)
    if link == "probit":
        y = norm.ppf(p)
        v = p * (1 - p) / ((n + 1.0) * norm.pdf(y) ** 2)
    else:
        y = np.log(p / (1 - p))
        v = 1.0 / (x + 0.5) + 1.0 / (n - x + 0.5)
    return y, v


def _moment_tau2(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """Method-of-moments (DerSimonian-Laird / Raudenbush) between-effect variance.

    ``y`` the observed effects with within-variances ``v``, ``X`` the design (meta-regression:
    residual heterogeneity). Returns NaN when there are not more effects than coefficients.
    """
    ok = np.isfinite(v) & (v > 0)
    y, v, X = y[ok], v[ok], X[ok]
    k = X.shape[0]
    p = int(np.linalg.matrix_rank(X)) if k else 0
    if k <= p:
        return float("nan")
    W = 1.0 / v
    XtW = X.T * W
    A = np.linalg.pinv(XtW @ X)
    beta = A @ (XtW @ y)
    q = float(np.sum(W * (y - X @ beta) ** 2))
    trace_p = float(np.sum(W) - np.trace(A @ (XtW * W) @ X))
    return max(0.0, (q - (k - p)) / trace_p) if trace_p > 0 else float("nan")


def centering_weights(
    data: DTAData,
    spec: ModelSpec,
    *,
    levels: int | None = None,
    weights: np.ndarray | None = None,
    design: Design | None = None,
    mode: str | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-effect centering weights ``w`` in [0, 1] (shape (groups, 2)) and how they were chosen.

    See :func:`choose_parameterization` for the rule. ``mode`` overrides
    ``spec.parameterization``. Groups are the rows (two levels) or the studies (three levels).
    """
    from scipy.stats import chi2

    levels = levels or spec.resolved_levels(data)
    mode = mode or spec.parameterization
    n = data.n_rows
    rw = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if levels == 2:
        gidx = np.arange(n)
    else:
        gidx = np.asarray(data.study_index)
    n_groups = int(gidx.max()) + 1
    info: dict[str, Any] = {"mode": mode}
    if mode in ("centered", "noncentered"):
        w = np.full((n_groups, 2), 1.0 if mode == "centered" else 0.0)
        info["reason"] = "forced by parameterization=" + repr(mode)
        return w, info
    design = design or make_design(data, spec)
    w = np.zeros((n_groups, 2))
    tau_hat = []
    counts = ((data.tp, data.n_diseased), (data.tn, data.n_nondiseased))
    for j, (outcome, (x, nn)) in enumerate(zip(OUTCOMES, counts, strict=True)):
        y, v = _link_moments(np.asarray(x, float), np.asarray(nn, float), spec.link)
        v = np.where(rw > 0, v / np.maximum(rw, 1e-300), np.inf)
        X = design.X[outcome]
        X = X[:, np.any(X != 0, axis=0)]  # zero (padding) columns carry nothing
        if levels == 3:
            used = np.isfinite(v)
            cnt = np.bincount(gidx, weights=used.astype(float), minlength=n_groups)
            safe = np.maximum(cnt, 1.0)
            yg = np.bincount(gidx, weights=np.where(used, y, 0.0), minlength=n_groups) / safe
            vg = np.bincount(gidx, weights=np.where(used, v, 0.0), minlength=n_groups) / safe**2
            vg = np.where(cnt > 0, vg, np.inf)
            Xg = (
                np.stack(
                    [
                        np.bincount(gidx, weights=X[:, c], minlength=n_groups)
                        for c in range(X.shape[1])
                    ],
                    axis=1,
                )
                / np.maximum(np.bincount(gidx, minlength=n_groups), 1)[:, None]
            )
            y, v, X = yg, vg, Xg
        tau2 = _moment_tau2(y, v, X)
        k = int(np.sum(np.isfinite(v)))
        if not np.isfinite(tau2):
            # no more effects than coefficients: nothing says the SD is large
            tau2 = 0.0
        else:
            # a lower bound rather than the estimate: small SDs stay plausible with
            # few effects, and centered effects at small SDs form a funnel (divergences)
            df = max(k - int(np.linalg.matrix_rank(X)), 1)
            tau2 *= float(chi2.ppf(_TAU2_ALPHA, df)) / df
        tau_hat.append(float(np.sqrt(tau2)))
        with np.errstate(invalid="ignore", divide="ignore"):
            w[:, j] = np.where(np.isfinite(v), tau2 / (tau2 + v), 0.0)
    info["tau_moment"] = tau_hat
    info["informativeness"] = [float(np.median(w[:, j])) for j in range(2)]
    return w, info


def parameterization_label(w: np.ndarray) -> str:
    if np.all(w >= _LABEL_CUT):
        return "centered"
    if np.all(w <= 1 - _LABEL_CUT):
        return "noncentered"
    return "partially centered"


def choose_parameterization(
    data: DTAData,
    spec: ModelSpec,
    *,
    levels: int | None = None,
    weights: np.ndarray | None = None,
    design: Design | None = None,
) -> dict[str, str]:
    r"""Say how the random effects are sampled: per level, and why.

    Every study effect (two levels) or study mean (three levels, see
    :func:`_three_level_effects`) is *partially centered* with its own weight ``w`` in [0, 1]
    (:func:`_bivariate_effects`: ``w = 1`` centered, ``w = 0`` non-centered). With
    ``spec.parameterization == "auto"`` the weight of effect ``i`` and outcome ``k`` is its
    informativeness

    .. math:: w_{ik} = \hat\tau_k^2 / (\hat\tau_k^2 + v_{ik}),

    the share of the effect's posterior precision that comes from its own data in the
    normal-normal approximation (the optimal partial centering of Papaspiliopoulos, Roberts &
    Skold 2007). ``v_ik`` is the delta-method variance of the observed link-scale proportion
    (0.5 added to both cells; for a study mean of a three-level model, the variance of the mean
    of its rows), ``tau_k^2`` the method-of-moments (DerSimonian-Laird; with covariates the
    residual, Raudenbush) estimate of the between-effect variance of outcome ``k``, lowered to
    a 99% lower bound, ``tau_k^2 chi2_{0.01}(K - p) / (K - p)`` (``K`` effects, ``p``
    coefficients; 0 when ``K <= p``): with few studies small SDs stay plausible, and
    centered effects at small SDs form a funnel (divergences), while
    non-centered effects of informative studies only mix more slowly. Large studies
    relative to the heterogeneity get ``w`` near 1 (centered), small studies or little
    heterogeneity ``w`` near 0 (non-centered), and a mix of both a per-study mix. Rows with
    weight 0 and padding get ``w = 0``. The within-study deviations of three-level models are
    always non-centered. ``"centered"`` / ``"noncentered"`` force ``w = 1`` / ``w = 0``.
    The weights are data of the compiled model: changing them never recompiles.

    Returns
    -------
    dict
        ``group``: ``"centered"``, ``"noncentered"`` or ``"partially centered"`` (all
        ``w >= 0.8``, all ``w <= 0.2``, otherwise); ``row``: the same for rows (two levels) or
        ``"noncentered"`` (three levels); ``reason``: one line.
    """
    levels = levels or spec.resolved_levels(data)
    w, info = centering_weights(data, spec, levels=levels, weights=weights, design=design)
    label = parameterization_label(w)
    out = {"group": label, "row": label if levels == 2 else "noncentered"}
    if spec.parameterization != "auto":
        out["reason"] = info["reason"]
        return out
    ts, tp = info["tau_moment"]
    what = "studies" if levels == 2 else "study means"
    desc = {
        "centered": f"{what} informative relative to the between-study SD",
        "noncentered": f"{what} weakly informative relative to the between-study SD",
        "partially centered": f"{what} of mixed informativeness, weighted per study",
    }[label]
    out["reason"] = (
        f"{desc}: moment SDs {ts:.2f}/{tp:.2f}, median informativeness "
        f"{info['informativeness'][0]:.2f}/{info['informativeness'][1]:.2f}"
    )
    return out


def build_model(
    data: DTAData,
    spec: ModelSpec,
    *,
    weights: np.ndarray | None = None,
    design: Design | None = None,
    centering: str | None = None,
    effect_law: Any = None,
) -> BuiltModel:
    """Build the PyMC model for ``data`` under ``spec``.

    Parameters
    ----------
    data : DTAData
        The validated table.
    spec : ModelSpec
        Model settings.
    weights : array, optional
        Per-row likelihood weights (default 1). Weight 0 removes a row's data while keeping all
        parameter shapes, so leave-one-out and subset refits re-use the compiled model.
    design : Design, optional
        Pre-built design (default: :func:`make_design`).
    centering : {"auto", "centered", "noncentered"}, optional
        Overrides ``spec.parameterization`` (used by the automatic escalation of
        :func:`bayesdta.fit`). The structure key does not depend on it.
    effect_law : callable, optional
        Hook of other families: ``effect_law(pm, pt, data_, priors, size, levels)`` is called
        inside the model and returns an :class:`EffectLaw`, the law of the study effects
        (default bivariate normal; e.g. the Student-t effects of
        :mod:`bayesdta.families.robust`); ``data_(name, value)`` registers model data,
        ``size`` is the number of (padded) effects. The structure key then includes
        ``spec.random_effects``.

    Returns
    -------
    BuiltModel
    """
    import pymc as pm
    import pytensor.tensor as pt

    levels = spec.resolved_levels(data)
    n = data.n_rows
    if weights is None:
        weights = np.ones(n)
    weights = np.asarray(weights, dtype=float)
    if weights.shape != (n,) or np.any(weights < 0) or not np.all(np.isfinite(weights)):
        raise SpecError(f"weights must be {n} finite non-negative numbers")
    design = design or make_design(data, spec, weights=weights)

    if levels == 2:
        # every row its own "study" when the data are clustered (rows-independent analysis)
        group_index = np.arange(n) if data.has_clusters else data.study_index
        group_labels = data.row_labels if data.has_clusters else data.studies
    else:
        group_index = data.study_index
        group_labels = data.studies
    n_groups = int(group_index.max()) + 1

    tau_levels: list[str] = []
    tau_group_idx = np.zeros(n_groups, dtype=np.int64)
    if spec.tau_by:
        col = data.frame[spec.tau_by].astype(object).map(str).to_numpy()
        tau_levels = sorted(set(col))
        ref = spec.reference.get(spec.tau_by)
        if ref is None and spec.tau_by in design.levels:
            ref = design.levels[spec.tau_by][0]
        if ref is not None and str(ref) in tau_levels:
            tau_levels = [str(ref)] + [x for x in tau_levels if x != str(ref)]
        per_group: dict[int, str] = {}
        for g, lv in zip(group_index, col, strict=True):
            if per_group.setdefault(int(g), lv) != lv:
                raise DTADataError(
                    f"column {spec.tau_by}: tau_by needs a study-level covariate, but study "
                    f"{group_labels[int(g)]!r} has several levels"
                )
        tau_group_idx = np.array([tau_levels.index(per_group[g]) for g in range(n_groups)])

    # Pad rows and groups up to a bucket size: padded rows have n = 0 and weight 0, so they add
    # nothing to the likelihood and their effects follow the prior. Data sets of similar size
    # then share one compiled model (nutpie compiles per parameter shape).
    n_pad = _bucket(n)
    g_pad = _bucket(n_groups)
    pad = n_pad - n
    group_index_p = np.concatenate(
        [group_index, n_groups + np.arange(pad) % max(g_pad - n_groups, 1)]
    )
    group_index_p = np.minimum(group_index_p, g_pad - 1)
    tau_group_idx_p = np.concatenate([tau_group_idx, np.zeros(g_pad - n_groups, dtype=np.int64)])

    def padrows(a, fill=0):
        a = np.asarray(a)
        return np.concatenate([a, np.full((pad, *a.shape[1:]), fill, dtype=a.dtype)])

    coords = {
        "row": np.arange(n_pad),
        "group": np.arange(g_pad),
        "outcome": list(OUTCOMES),
        "coef_sensitivity": design.columns["sensitivity"],
        "coef_specificity": design.columns["specificity"],
    }
    if tau_levels:
        coords["tau_level"] = tau_levels
    dv: dict[str, np.ndarray] = {}
    priors = spec.priors
    w_c, _ = centering_weights(
        data, spec, levels=levels, weights=weights, design=design, mode=centering
    )
    w_c = np.concatenate([w_c, np.zeros(((n_pad if levels == 2 else g_pad) - len(w_c), 2))])
    with pm.Model(coords=coords) as model:

        def data_(name, value, dtype=float):
            dv[name] = np.asarray(value, dtype=dtype)
            return pm.Data(name, dv[name])

        tp = data_("tp", padrows(data.tp))
        tn = data_("tn", padrows(data.tn))
        n1 = data_("n1", padrows(data.n_diseased))
        n0 = data_("n0", padrows(data.n_nondiseased))
        w = data_("weight", padrows(weights))
        gidx = data_("group_index", group_index_p, dtype=np.int64)
        cw = data_("centering", w_c)
        linpred = {}
        for outcome in OUTCOMES:
            X = data_(f"X_{outcome}", padrows(design.X[outcome]))
            cols = design.columns[outcome]
            p_mu = priors[f"mu_{outcome}"].kwargs
            p_beta = priors[f"beta_{outcome}"].kwargs
            icpt = design.intercepts
            mean = np.array([p_mu["mu"] if c in icpt else p_beta["mu"] for c in cols])
            sd = np.array([p_mu["sigma"] if c in icpt else p_beta["sigma"] for c in cols])
            m_t = data_(f"prior__beta_{outcome}__mu", mean)
            s_t = data_(f"prior__beta_{outcome}__sigma", sd)
            beta = pm.Normal(f"beta_{outcome}", m_t, s_t, dims=f"coef_{outcome}")
            linpred[outcome] = pt.dot(X, beta)

        dims_tau = "tau_level" if tau_levels else None
        tau_se = _scale_rv(pm, "tau_sensitivity", priors["tau_sensitivity"], dv, dims=dims_tau)
        tau_sp = _scale_rv(pm, "tau_specificity", priors["tau_specificity"], dv, dims=dims_tau)
        rho = _corr_rv(pm, "rho", priors["rho"], dv)
        if tau_levels:
            tix = data_("tau_group_index", tau_group_idx_p, dtype=np.int64)
            tau_se_g, tau_sp_g = tau_se[tix], tau_sp[tix]
        else:
            tau_se_g, tau_sp_g = tau_se, tau_sp
        lp_se, lp_sp = linpred["sensitivity"], linpred["specificity"]
        if levels == 2:
            # one effect per row (groups and rows coincide): theta_r ~ MVN(x_r beta, Sigma)
            sd_se = tau_se_g[gidx] if tau_levels else tau_se
            sd_sp = tau_sp_g[gidx] if tau_levels else tau_sp
            law = None if effect_law is None else effect_law(pm, pt, data_, priors, n_pad, 2)
            if law is not None and law.scale is not None:
                sd_se, sd_sp = sd_se * law.scale, sd_sp * law.scale
            theta_se, theta_sp = _bivariate_effects(
                pm, pt, "study", "row", lp_se, lp_sp, sd_se, sd_sp, rho, cw, law
            )
        else:
            # Three levels, written exactly but without the u/v ridge (see _three_level_effects)
            tw_se = _scale_rv(pm, "tau_within_sensitivity", priors["tau_within_sensitivity"], dv)
            tw_sp = _scale_rv(pm, "tau_within_specificity", priors["tau_within_specificity"], dv)
            rho_w = _corr_rv(pm, "rho_within", priors["rho_within"], dv)
            sizes = np.bincount(group_index_p, minlength=g_pad).astype(float)
            gsize = data_("group_size", np.maximum(sizes, 1.0))
            law = None if effect_law is None else effect_law(pm, pt, data_, priors, g_pad, 3)
            theta_se, theta_sp = _three_level_effects(
                pm,
                pt,
                gidx,
                gsize,
                g_pad,
                (lp_se, lp_sp),
                (tau_se_g, tau_sp_g, rho),
                (tw_se, tw_sp, rho_w),
                cw,
                None if law is None else law.scale,
            )
        pm.Deterministic("theta", pt.stack([theta_se, theta_sp], axis=1), dims=("row", "outcome"))
        # exact binomial log-likelihood (the binomial coefficient is constant and omitted here;
        # the stored pointwise log-likelihood includes it); log(1 - F(x)) = log F(-x) because
        # the links are symmetric
        ll = (
            tp * pt_log_inverse(theta_se, spec.link)
            + (n1 - tp) * pt_log_inverse(-theta_se, spec.link)
            + tn * pt_log_inverse(theta_sp, spec.link)
            + (n0 - tn) * pt_log_inverse(-theta_sp, spec.link)
        )
        pm.Potential("likelihood", pt.sum(w * ll))

    key_payload = {
        "levels": levels,
        "n_rows": n_pad,
        "n_groups": g_pad,
        "p": [len(design.columns[o]) for o in OUTCOMES],
        "families": {k: p.dist for k, p in priors.items()},
        "tau_levels": len(tau_levels),
        "link": spec.link,
    }
    if effect_law is not None:
        key_payload["random_effects"] = spec.random_effects
    key = hashlib.sha1(json.dumps(key_payload, sort_keys=True).encode()).hexdigest()[:16]
    built = BuiltModel(
        model, dv, key, levels, design, list(group_labels), n, n_groups, list(tau_levels)
    )
    kind = numba_logp_kind(spec, levels)
    if kind is not None and effect_law is None and not tau_levels:
        # the same density, written with its gradient for numba (the sampler uses it when
        # inference.native.native_kind accepts the model)
        built.numba_logp = {"kind": kind, "families": {k: p.dist for k, p in priors.items()}}
    return built


def numba_logp_kind(spec: ModelSpec, levels: int) -> str | None:
    """The kind of hand-written numba log density of this model, or ``None`` (the graph's).

    Models with the logit link, normal study effects and no ``tau_by`` have one, with two
    levels and with three (:mod:`bayesdta.families.bivariate_logp`): the same density with an
    analytic gradient, sampled without compiling the graph (:mod:`bayesdta.inference.native`).
    """
    if spec.link == "logit" and spec.random_effects == "normal" and not spec.tau_by:
        return {2: "two_level_normal_logit", 3: "three_level_normal_logit"}.get(levels)
    return None


def prior_predictive(
    data: Any,
    *,
    spec: Any = None,
    draws: int = 1000,
    seed: int | None = None,
    **spec_kwargs: Any,
):
    """Draw from the prior and the prior predictive distribution of the counts.

    Parameters
    ----------
    data : DTAData
        The table (its sample sizes and covariates define the predictive distribution).
    spec : ModelSpec, optional
        Model settings (or give them as keyword arguments, e.g. ``priors=...``).
    draws : int
        Number of prior draws.
    seed : int, optional
        Random seed.

    Returns
    -------
    xarray.Dataset
        Dims ``draw`` and ``row``: the hyperparameters, ``sensitivity`` and ``specificity``
        (summary point, inverse link of the intercepts), per-row ``theta`` and simulated ``TP``,
        ``TN``, plus observed ``TP_observed``, ``TN_observed`` for comparison.
    """
    import numpy as np
    import pymc as pm
    import xarray as xr

    from .links import inverse

    spec = spec or ModelSpec(**spec_kwargs)
    built = build_model(data, spec)
    import warnings

    # the Potential is the likelihood: ignoring it is what prior sampling means
    with built.model, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The effect of Potentials", category=UserWarning)
        prior = pm.sample_prior_predictive(draws=draws, random_seed=seed).prior
    prior = prior.isel(chain=0, drop=True)
    n = data.n_rows
    theta = prior["theta"].values[:, :n, :]
    rng = np.random.default_rng(seed)

    def expit(x):  # the inverse link of the model
        return inverse(x, spec.link)

    tp = rng.binomial(data.n_diseased, expit(theta[..., 0]))
    tn = rng.binomial(data.n_nondiseased, expit(theta[..., 1]))
    ds = xr.Dataset(
        {
            "theta": (("draw", "row", "outcome"), theta),
            "TP": (("draw", "row"), tp),
            "TN": (("draw", "row"), tn),
            "TP_observed": ("row", data.tp),
            "TN_observed": ("row", data.tn),
            "sensitivity": (
                "draw",
                expit(prior["beta_sensitivity"].sel(coef_sensitivity="Intercept").values),
            ),
            "specificity": (
                "draw",
                expit(prior["beta_specificity"].sel(coef_specificity="Intercept").values),
            ),
        },
        coords={"row": data.row_labels, "outcome": ["sensitivity", "specificity"]},
    )
    for k in SCALE_PARAMETERS:
        if k in prior and "tau_level" not in prior[k].dims:
            ds[k] = ("draw", prior[k].values)
    return ds


#: The bivariate binomial family with bivariate normal study (and row) effects, two or three
#: levels, meta-regression; the summary quantities of DTAFit.summary it supports.
NORMAL_FAMILY = register_family(
    Family(
        name="normal",
        parameters=PARAMETER_NAMES,
        default_priors=DEFAULT_PRIORS,
        prior_rationale=PRIOR_RATIONALE,
        build=build_model,
        quantities=(
            "sensitivity",
            "specificity",
            "lr_positive",
            "lr_negative",
            "dor",
            "mu_sensitivity",
            "mu_specificity",
            "tau_sensitivity",
            "tau_specificity",
            "rho",
            "tau_within_sensitivity",
            "tau_within_specificity",
            "rho_within",
            "auc",
            "auc_partial",
            "i2_sensitivity",
            "i2_specificity",
            "i2_bivariate",
            "i2_sensitivity_zd",
            "i2_specificity_zd",
            "i2_bivariate_zd",
            "sensitivity_pooled",
            "specificity_pooled",
        ),
        description="bivariate binomial model, bivariate normal random effects (2 or 3 levels)",
    )
)
