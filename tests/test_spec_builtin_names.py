"""A spec formula may name a covariate that shadows a Python builtin (mada's smoking ``type``)."""

from __future__ import annotations

from bayesdta.families.bivariate import formula_variables
from bayesdta.reporting.spec import parse_spec


def test_formula_variables_without_columns_accepts_builtin_names():
    assert formula_variables("~ type + id")[0] == ["type", "id"]


def test_spec_with_type_covariate_parses():
    spec = parse_spec(
        {
            "data": {"example": "smoking"},
            "regression": [{"name": "type", "formula": "~ type"}],
        }
    )
    assert spec.fits[1].variables() == ["type"]
