"""Models sampled without compiling a graph: the hand-written numba log densities.

The bivariate binomial model with the logit link, normal study effects and no ``tau_by``
(two or three levels: the models of most reviews; also the comparative "shared" model) has
its log density, gradient and stored draws written for numba in
:mod:`bayesdta.families.bivariate_logp`, once for every size: the sizes are read from the data
at run time. Such a model needs no compilation per structure;
numba compiles the two C callbacks of each kind once per machine and keeps them in its
on-disk cache, so a new process reaches its first draw in about as long as it takes to import
PyMC and build the model. Everything else (other links, Student-t effects, ``tau_by``, the
other families) is compiled from its PyMC graph by nutpie (:mod:`bayesdta.inference.sampling`,
with its disk cache :mod:`bayesdta.inference.compile_cache`).

The PyMC graph stays the reference: the model is built as before (its variables, shapes and
initial points come from it) and ``tests/test_native_models.py`` checks the density, the
gradient and the stored draws against the graph's at random points.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from nutpie.compile_pymc import CompiledPyMCModel

from ..families.bivariate import BuiltModel

__all__ = [
    "native_kind",
    "compile_native",
    "free_shapes",
    "NativeCompiledModel",
]


def native_kind(built: BuiltModel) -> str | None:
    """The kind of hand-written density that stands in for ``built``'s graph, or ``None``.

    ``None`` unless the model was built with one (``built.numba_logp``), every SD prior is of
    a family the density knows, and the model's free and stored variables are exactly the ones
    it was written for (so a change of the graph falls back to compiling the graph).
    """
    info = getattr(built, "numba_logp", None)
    if not info or built.tau_levels:
        return None
    from ..families import bivariate_logp as bl

    kind = info.get("kind")
    if kind == "three_level_normal_logit":
        free, expanded, scales = bl.FREE_THREE_LEVEL, bl.EXPANDED_THREE_LEVEL, 4
    elif kind in ("two_level_normal_logit", "shared_normal_logit"):
        free, expanded, scales = bl.FREE_TWO_LEVEL, bl.EXPANDED_TWO_LEVEL, 2
    else:
        return None
    sds = (
        "tau_sensitivity",
        "tau_specificity",
        "tau_within_sensitivity",
        "tau_within_specificity",
    )[:scales]
    if any(info["families"].get(s) not in bl.SCALE_CODES for s in sds):
        return None
    model = built.model
    names = tuple(model.rvs_to_values[rv].name for rv in model.free_RVs)
    if names != free:
        return None
    rest = tuple(v.name for v in model.unobserved_value_vars if v.name not in names)
    if rest != expanded:
        return None
    # ... and of the shapes the density reads from the data
    (_, _, shapes), _, _ = _shape_info(kind, built.data_values)
    for rv, shape in zip(model.free_RVs, shapes, strict=False):
        if _model_shape(model, rv) != tuple(shape):
            return None
    return kind


def _model_shape(model: Any, rv: Any) -> tuple[int, ...] | None:
    """Shape of a random variable from its dims (no graph evaluation), or None if unknown."""
    dims = model.named_vars_to_dims.get(rv.name)
    if not dims:
        return () if rv.ndim == 0 else None
    out = []
    for d in dims:
        length = model.dim_lengths[d]
        value = length.get_value() if hasattr(length, "get_value") else length.data
        out.append(int(value))
    return tuple(out)


def _shape_info(kind: str, arrays: dict[str, np.ndarray]):
    """Names, slices and shapes of the stored draw, as nutpie's ``shape_info``."""
    from ..families import bivariate_logp as bl

    n_rows = arrays["tp"].shape[0]
    k1 = arrays["X_sensitivity"].shape[1]
    k2 = arrays["X_specificity"].shape[1]
    if kind == "three_level_normal_logit":
        n_groups = arrays["group_size"].shape[0]
        free = [(k1,), (k2,), (), (), (), (), (), (), (n_groups,), (n_groups,), (n_rows, 2)]
        names = list(bl.FREE_THREE_LEVEL) + list(bl.EXPANDED_THREE_LEVEL)
        shapes = free + [()] * 8 + [(n_rows, 2)]
    else:
        # two levels: one effect per row; "shared": one per study, no within-study level
        n_eff = arrays["group_size"].shape[0] if kind == "shared_normal_logit" else n_rows
        free = [(k1,), (k2,), (), (), (), (n_eff,), (n_eff,)]
        names = list(bl.FREE_TWO_LEVEL) + list(bl.EXPANDED_TWO_LEVEL)
        shapes = free + [()] * 4 + [(n_rows, 2)]
    slices, start = [], 0
    for s in shapes:
        size = int(np.prod(s)) if s else 1
        slices.append(slice(start, start + size))
        start += size
    n_dim = sum(int(np.prod(s)) if s else 1 for s in free)
    return (names, slices, [tuple(s) for s in shapes]), n_dim, start


def free_shapes(built: BuiltModel) -> dict[str, tuple[int, ...]]:
    """Shape of each free random variable of ``built`` (by variable name), from its data.

    Saves evaluating the model's initial point (a PyTensor compilation) to learn them.
    """
    kind = native_kind(built)
    if kind is None:
        raise ValueError("this model has no hand-written log density")
    (_, _, shapes), _, _ = _shape_info(kind, built.data_values)
    return {rv.name: shapes[i] for i, rv in enumerate(built.model.free_RVs)}


@dataclasses.dataclass(frozen=True)
class NativeCompiledModel(CompiledPyMCModel):
    """nutpie's compiled PyMC model with the hand-written C callbacks of ``native_kind``.

    ``shared_data`` holds the model's data by name (as ``BuiltModel.data_values``), so
    ``with_data`` takes the same names as for a graph-compiled model; the callbacks read the
    packed arrays (``native_arrays``) through ``user_data``.
    """

    native_kind: str = ""
    native_families: dict | None = None
    native_arrays: dict | None = None

    def with_data(self, **updates: Any) -> NativeCompiledModel:
        """A copy reading new data (by the model's data names; shapes must stay)."""
        from ..families import bivariate_logp as bl

        shared = dict(self.shared_data)
        for name, value in updates.items():
            if name not in shared:
                raise KeyError(f"Unknown shared variable: {name}")
            old = shared[name]
            new = np.array(value, dtype=old.dtype, order="C", copy=True)
            if new.ndim != old.ndim:
                raise ValueError(f"Shared variable {name} must have rank {old.ndim}")
            new.flags.writeable = False
            shared[name] = new
        arrays = bl.pack(self.native_kind, self.native_families, shared)
        _, n_dim, n_expanded = _shape_info(self.native_kind, arrays)
        if n_dim != self._n_dim or n_expanded != self.n_expanded:
            raise ValueError("with_data changed the model's dimensions")
        return dataclasses.replace(
            self, shared_data=shared, native_arrays=arrays, user_data=bl.record(arrays)
        )


def _callbacks(kind: str):
    """The C callbacks of ``kind``; a damaged numba cache is deleted and compiled afresh."""
    from ..families import bivariate_logp as bl
    from . import compile_cache as cc

    try:
        return bl.c_functions(kind)
    except Exception as exc:  # noqa: BLE001 - e.g. a truncated or overwritten cache file
        removed = cc.clear_native()
        cc.warn(
            f"numba's cache of the hand-written models could not be read ({type(exc).__name__}: "
            f"{exc}); removed {removed} cache file(s) and compiled them again"
        )
        return bl.c_functions(kind)


def compile_native(built: BuiltModel, initial_points: dict[str, np.ndarray]):
    """The nutpie model of ``built`` with its hand-written callbacks (no graph compilation).

    ``built`` must have a :func:`native_kind`. ``initial_points``: the starting values by
    variable name, jittered as nutpie does for compiled PyMC models.
    """
    from ..families import bivariate_logp as bl
    from . import compile_cache as cc

    kind = native_kind(built)
    if kind is None:
        raise ValueError("this model has no hand-written log density")
    families = dict(built.numba_logp["families"])
    shared = {}
    for name, value in built.data_values.items():
        a = np.array(value, order="C", copy=True)
        a.flags.writeable = False
        shared[name] = a
    arrays = bl.pack(kind, families, shared)
    shape_info, n_dim, n_expanded = _shape_info(kind, arrays)
    logp, expand = _callbacks(kind)
    return cc.assemble(
        NativeCompiledModel,
        built.model,
        initial_points,
        shape_info,
        n_dim=n_dim,
        n_expanded=n_expanded,
        logp=logp,
        expand=expand,
        shared_data=shared,
        user_data=bl.record(arrays),
        native_kind=kind,
        native_families=families,
        native_arrays=arrays,
    )
