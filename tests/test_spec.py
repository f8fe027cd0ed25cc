"""Analysis specs (TOML): parsing, validation errors naming the key, extends, worked examples."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import bayesdta as bd
from bayesdta.reporting.spec import (
    derive_seed,
    dump_toml,
    expand_quantities,
    grid_product,
    load_spec,
    parse_spec,
)

MODELS = Path(__file__).resolve().parents[1] / "models"

MINIMAL = """
[analysis]
name = "tiny"
seed = 7

[data]
example = "dementia"
"""


def write(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(bd.SpecError) as info:
        spec = load_spec(write(tmp_path, text))
        data = spec.load_data()
        spec.check_data(data)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------------------ worked examples
@pytest.mark.parametrize("path", sorted(MODELS.glob("*.toml")), ids=lambda p: p.name)
def test_worked_example_specs_are_valid(path):
    spec = load_spec(path)
    data = spec.load_data()
    spec.check_data(data)
    assert spec.main.is_main and spec.main.link == "logit"
    # the worked examples use the simulated osteoporosis data (or its variants)
    examples = ("osteoporosis_dl", "osteoporosis_comparative", "osteoporosis_latent_class")
    assert spec.data.get("example") in examples
    assert spec.is_simulated()


def test_main_spec_content():
    spec = load_spec(MODELS / "osteoporosis.toml")
    assert spec.name == "osteoporosis" and spec.seed == 2025
    assert spec.main.model["levels"] == 3 and "formula" not in spec.main.model
    design = spec.fit_spec("design")
    assert design.model["formula"] == bd.load_truth()["model_spec"]["formula"]
    assert design.model["reference"] == bd.load_truth()["model_spec"]["reference"]
    assert set(spec.outputs["figures"]) == {
        "forest",
        "sroc",
        "fagan",
        "lr_scatter",
        "deeks",
        "influence",
        "ppc",
        "prior_posterior",
        "forest_ratios",  # issue 13
        "pca_biplot",
    }
    assert spec.sensitivity is not None and spec.sensitivity.leave_one_study_out is True
    assert spec.fit_seed(spec.main) == 2025
    assert spec.fit_seed(design) == derive_seed(2025, "fit:design") != 2025


def test_defaults_of_minimal_spec(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL))
    assert [f.name for f in spec.fits] == ["main"]
    assert spec.sampler == {"backend": "nutpie", "chains": 4}
    assert spec.outputs["ci"] == 0.95 and spec.outputs["figure_formats"][0] == "png"
    assert spec.report["formats"] == ["html", "md"] and spec.sensitivity is None
    assert spec.load_data().n_rows == 33


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("[samplr]\ndraws = 10\n", "samplr: unknown key (did you mean 'sampler'?)"),
        ("[sampler]\ndraw = 10\n", "sampler.draw: unknown key (did you mean 'draws'?)"),
        ("[sampler]\ndraws = 'many'\n", "sampler.draws: must be an integer, got 'many'"),
        ("[sampler]\ndraws = 0\n", "sampler.draws: must be a positive integer"),
        ("[sampler]\ntarget_accept = 1.5\n", "sampler.target_accept: must lie strictly between"),
        ("[sampler]\nbackend = 'stan'\n", "sampler.backend: must be one of 'nutpie', 'pymc'"),
        ("[model]\nlink = 'cloglog'\n", "model.link: link 'cloglog' is not implemented"),
        ("[model]\nlevels = 4\n", "model.levels: must be one of 2, 3, 'auto'"),
        ("[model]\nformula = 'backbone'\n", "model.formula: write the right-hand side only"),
        ("[model.priors]\ntau = 'Weibull(1)'\n", "model.priors.tau: unknown prior family"),
        ("[model.priors]\ntau = 'Normal(0, 1)'\n", "model.priors.tau: prior for tau_sensitivity"),
        ("[model.priors]\ntua = 'HalfNormal(1)'\n", "model.priors.tua: unknown prior name"),
        ("[[regression]]\nname = 'r'\n", "regression[0].formula: missing"),
        ("[[regression]]\nformula = '~ x'\n", "regression[0].name: missing"),
        ("[[regression]]\nname = 'a b'\nformula = '~ x'\n", "regression[0].name: 'a b' is not"),
        ("[regression]\nname = 'r'\n", "regression: must be an array of tables"),
        ("[outputs]\nfigures = ['forrest']\n", "outputs.figures: unknown entry 'forrest'"),
        ("[outputs]\nci = 95\n", "outputs.ci: must lie strictly between 0 and 1"),
        ("[outputs]\nfigure_formats = ['gif']\n", "outputs.figure_formats: unknown entry 'gif'"),
        ("[outputs]\ntables = ['summry']\n", "outputs.tables: unknown entry 'summry'"),
        ("[report]\nround_to = -1\n", "report.round_to: must be an integer >= 0"),
        ("[analysis]\nseed = -3\n", "analysis.seed: must be an integer >= 0"),
        ("[sensitivity]\nlevels = [4]\n", "sensitivity.levels[0]: must be one of 2, 3"),
        ("[sensitivity]\nfit = 'nope'\n", "sensitivity.fit: must be one of 'main'"),
        (
            "[sensitivity.prior_grid]\ntau = ['HalfNormal(1)', 'Bad(1)']\n",
            "sensitivity.prior_grid.tau[1]: unknown prior family",
        ),
        ("[[sensitivity.exclude]]\nvalues = ['x']\n", "sensitivity.exclude[0].column: missing"),
        ("[[sensitivity.priors]]\ntau = 'HalfNormal(1)'\n", "sensitivity.priors[0].name: missing"),
        ("[sensitivity]\nworkers = 0\n", "sensitivity.workers: must be a positive integer"),
    ],
)
def test_validation_errors_name_the_key(tmp_path, extra, expected):
    text = MINIMAL.replace("[analysis]", "[analysis]", 1)
    # put the extra tables after the minimal ones (analysis.seed is replaced, not duplicated)
    if extra.startswith("[analysis]"):
        text = text.replace("seed = 7\n", extra.split("\n", 1)[1])
    else:
        text = text + extra
    msg = error_of(tmp_path, text)
    assert msg.startswith(str(tmp_path / "spec.toml") + ": ")
    assert expected in msg, msg


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("", "data: missing"),
        ("[data]\nexample = 'dementa'\n", "data.example: unknown packaged example 'dementa' (did"),
        ("[data]\nexample = 'dementia'\nfile = 'x.csv'\n", "data: give exactly one of"),
        ("[data]\nfile = 'nothere.csv'\n", "data.file: "),
        ("[data]\nexample = 'dementia'\nstudyy = 'x'\n", "data.studyy: unknown key"),
        ("[data]\nexample = 'dementia'\n[data.include]\nsite = ['A']\n", "data.include.site:"),
        ("[data]\nexample = 'dementia'\n[data.columns]\nTPP = 'a'\n", "data.columns.TPP:"),
    ],
)
def test_data_errors_name_the_key(tmp_path, data, expected):
    msg = error_of(tmp_path, "[analysis]\nname = 'x'\n" + data)
    assert expected in msg, msg


def test_errors_found_against_the_data(tmp_path):
    base = "[analysis]\nname = 'x'\n[data]\nexample = 'osteoporosis_dl'\n"
    msg = error_of(tmp_path, base + "[[regression]]\nname = 'r'\nformula = '~ nosuch'\n")
    assert "regression[0]:" in msg and "'nosuch'" in msg
    msg = error_of(
        tmp_path,
        base + "[[regression]]\nname = 'r'\nformula = '~ backbone'\nreference = {backbone = 'X'}\n",
    )
    assert "regression[0]:" in msg and "reference level 'X'" in msg
    msg = error_of(tmp_path, base + "[[sensitivity.exclude]]\ncolumn = 'rob'\nvalues = ['high']\n")
    assert "sensitivity.exclude[0].column: 'rob' is not a covariate" in msg
    msg = error_of(
        tmp_path, base + "[[sensitivity.exclude]]\ncolumn = 'risk_of_bias'\nvalues = ['hgh']\n"
    )
    assert "sensitivity.exclude[0].values: no row has risk_of_bias in ['hgh']" in msg
    msg = error_of(tmp_path, base + "[sensitivity]\nleave_one_study_out = ['Nobody 2020']\n")
    assert "sensitivity.leave_one_study_out[0]: no study 'Nobody 2020'" in msg
    msg = error_of(tmp_path, base + "[data.exclude]\nrisk_of_bias = ['low', 'high']\n")
    assert "leave no row" in msg


def test_toml_syntax_error_names_the_file(tmp_path):
    msg = error_of(tmp_path, "[analysis\nname = 1\n")
    assert "spec.toml: not valid TOML" in msg
    with pytest.raises(bd.SpecError, match="does not exist"):
        load_spec(tmp_path / "missing.toml")


def test_quantity_patterns():
    names = ["sensitivity", "specificity", "lr_positive", "lr_negative", "auc", "tau_sensitivity"]
    assert expand_quantities(["lr_*", "sensitivity"], names) == [
        "sensitivity",
        "lr_positive",
        "lr_negative",
    ]
    assert expand_quantities([], names) == names
    with pytest.raises(bd.SpecError, match=r"outputs.quantities\[1\]: 'sensitivty' matches no"):
        expand_quantities(["auc", "sensitivty"], names, key="outputs.quantities")


# ------------------------------------------------------------------------------ extends, data
def test_extends_merges_tables_and_resolves_paths(tmp_path):
    (tmp_path / "data").mkdir()
    frame = bd.load_example("osteoporosis_dl").frame
    frame.to_csv(tmp_path / "data" / "osteo.csv", index=False)
    write(
        tmp_path,
        "[analysis]\nname = 'base'\nseed = 3\n[data]\nfile = 'data/osteo.csv'\n"
        "[data.exclude]\nrisk_of_bias = ['high']\n[sampler]\ndraws = 300\nchains = 2\n"
        "[[regression]]\nname = 'r'\nformula = '~ backbone'\n",
        "base.toml",
    )
    (tmp_path / "sub").mkdir()
    child = write(
        tmp_path / "sub",
        "extends = '../base.toml'\n[analysis]\nname = 'child'\n[sampler]\ndraws = 100\n"
        "[model.priors]\ntau = 'HalfCauchy(1)'\n",
        "child.toml",
    )
    spec = load_spec(child)
    assert spec.name == "child" and spec.seed == 3
    assert spec.sampler["draws"] == 100 and spec.sampler["chains"] == 2
    assert spec.data["file"] == str((tmp_path / "data" / "osteo.csv").resolve())
    assert spec.extends == (str((tmp_path / "base.toml").resolve()),)
    # the regression inherits the main model's priors
    assert spec.fit_spec("r").model["priors"] == {"tau": "HalfCauchy(beta=1)"}
    data = spec.load_data()
    assert data.n_rows == 27 and set(data.frame["risk_of_bias"]) == {"low"}
    # the merged spec renders as TOML that parses back to the same tables
    assert tomllib.loads(spec.resolved_toml()) == spec.raw


def test_circular_extends(tmp_path):
    write(tmp_path, "extends = 'b.toml'\n", "a.toml")
    write(tmp_path, "extends = 'a.toml'\n", "b.toml")
    with pytest.raises(bd.SpecError, match="extends: circular"):
        load_spec(tmp_path / "a.toml")


def test_dump_toml_round_trip_of_worked_examples():
    for path in MODELS.glob("*.toml"):
        raw = load_spec(path).raw
        assert tomllib.loads(dump_toml(raw)) == raw


def test_parse_spec_from_mapping_and_seeds():
    spec = parse_spec({"data": {"example": "skin_tests"}, "sampler": {"chains": 2}})
    assert spec.name == "analysis" and spec.sampler["chains"] == 2
    assert tomllib.loads(spec.text)["sampler"] == {"chains": 2}
    assert derive_seed(1, "a") == derive_seed(1, "a")
    assert len({derive_seed(1, "a"), derive_seed(1, "b"), derive_seed(2, "a")}) == 3
    assert 0 <= derive_seed(2**31 - 1, "x") < 2**31
    assert grid_product({"tau": ["a", "b"], "rho": ["c"]}) == [
        {"tau": "a", "rho": "c"},
        {"tau": "b", "rho": "c"},
    ]
