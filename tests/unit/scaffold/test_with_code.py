"""modelops.scaffold --with-code: a starter package for the model's own code, the declaration's
``code:`` section naming it, and that both work the way the platform uses them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelops.config import load_model_config
from modelops.scaffold import cli as scaffold
from modelops.scaffold.starter_code import CANDIDATE_NAME, PACKAGE_FILES, choose_feature
from modelops.training.candidate import train_candidate
from modelops.training.trust import trusted_types_for
from modelops.usercode import loader

INCLUDE = Path(__file__).resolve().parents[3] / "include"


def sample(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(rows)],
            "basket_eur": rng.gamma(2.0, 20.0, rows).round(2),
            "items": rng.integers(0, 12, rows),  # zeros: the ratio's denominator
            "channel": rng.choice(["web", "app", "phone"], rows),
            "coupon": rng.choice(["none", "10off", "free_ship"], rows).astype(object),
        }
    )
    frame.loc[::7, "coupon"] = None
    frame["returned"] = (rng.random(rows) < 0.3 + 0.01 * frame["items"]).astype(int)
    frame["minutes"] = 20 + 0.5 * frame["basket_eur"] + rng.normal(0, 5, rows)
    frame["segment"] = rng.choice(["a", "b", "c"], rows)
    return frame


#: kind of starter feature -> (target, columns dropped from the sample, the engineered column)
CASES = {
    "ratio": ("returned", ["minutes", "segment"], "basket_eur_per_items"),
    "log1p_abs": ("minutes", ["items", "returned", "segment"], "log1p_abs_basket_eur"),
    "missing_count": ("segment", ["basket_eur", "items", "returned", "minutes"], "missing_count"),
}


def feature_class(kind: str) -> str:
    return "".join(part.capitalize() for part in CASES[kind][2].split("_"))


def run_scaffold(name: str, frame: pd.DataFrame, target: str, folder: Path, *extra: str) -> int:
    data = folder / f"{name}.csv"
    frame.to_csv(data, index=False)
    argv = [name, "--data", str(data), "--target", target, "--id-column", "order_id", "--with-code", *extra]
    return scaffold.main([*argv, "--models-dir", str(folder / "models"), "--expectations-dir", str(folder)])


@pytest.fixture(scope="module")
def drafted(tmp_path_factory):
    """One starter package per kind of feature, in one models folder (MODELOPS_MODELS_DIR while
    the module's tests run). Names are unique per run: their modules are cached in sys.modules."""
    folder = tmp_path_factory.mktemp("with-code")
    (folder / "models").mkdir()
    names = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODELOPS_MODELS_DIR", str(folder / "models"))
        for kind, (target, drop, _) in CASES.items():
            names[kind] = f"starter_{kind}_{uuid.uuid4().hex[:6]}"
            frame = sample().drop(columns=drop)
            assert run_scaffold(names[kind], frame, target, folder) == 0, kind
        yield {"models": folder / "models", "names": names}


@pytest.mark.parametrize("kind", list(CASES))
def test_the_package_and_its_code_section_are_written(drafted, kind):
    name, models = drafted["names"][kind], drafted["models"]
    assert sorted(p.name for p in (models / name).iterdir()) == sorted([*PACKAGE_FILES, f"test_{name}.py"])
    config = load_model_config(models / f"{name}.yaml")  # the strict loader the DAGs use
    assert config.code.package == name
    assert [f.name for f in config.engineered_features] == [CASES[kind][2]]
    assert config.engineered_features[0].type == "numeric"
    assert config.code.feature_steps == (f"{name}.features:add_{CASES[kind][2]}",)
    assert config.custom_candidates[CANDIDATE_NAME].factory == f"{name}.candidates:make_model"
    assert config.training.candidates[-1] == CANDIDATE_NAME and "linear" in config.training.candidates
    assert config.code.trusted_types == (f"{name}.features.{feature_class(kind)}",)
    assert loader.declared_code_errors(config) == []


def test_the_written_tests_pass(drafted):
    models = drafted["models"]
    pythonpath = os.pathsep.join([str(INCLUDE), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": pythonpath, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # a faster start
    packages = [str(models / name) for name in drafted["names"].values()]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *packages],
        cwd=models,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{3 * len(packages)} passed" in done.stdout


def test_the_written_code_passes_the_projects_lint(drafted):
    """``make lint`` checks include/models/ too: a starter package must not break it."""
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("no ruff beside the interpreter")
    config = str(INCLUDE.parent / "pyproject.toml")
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run([ruff, *command, "--config", config, drafted["models"]], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kind", list(CASES))
def test_the_own_candidate_trains_with_the_engineered_column(drafted, kind):
    name, models = drafted["names"][kind], drafted["models"]
    config = load_model_config(models / f"{name}.yaml")
    target, drop, column = CASES[kind]
    frame = sample(seed=1).drop(columns=drop)
    space = loader.search_space(config, config.custom_candidates[CANDIDATE_NAME])[:1]  # one setting: fast
    result = train_candidate(config, CANDIDATE_NAME, frame[config.feature_names], frame[target], search_space=space)
    assert result.cv_folds == config.training.cv_folds and result.cv_primary is not None
    assert column in result.model.named_steps["preprocess"].get_feature_names_out()
    assert f"{name}.features.{feature_class(kind)}" in trusted_types_for(config, CANDIDATE_NAME, result.model)


def test_existing_files_are_refused_without_force(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODELOPS_MODELS_DIR", str(tmp_path / "models"))
    name = f"again_{uuid.uuid4().hex[:6]}"
    frame = sample(rows=60).drop(columns=["minutes", "segment"])
    assert run_scaffold(name, frame, "returned", tmp_path) == 0
    out = capsys.readouterr().out
    for path in PACKAGE_FILES:
        assert f"wrote {tmp_path / 'models' / name / path}" in out
    (tmp_path / "models" / f"{name}.yaml").unlink()  # the package alone is enough to refuse
    (tmp_path / f"{name}.json").unlink()
    assert run_scaffold(name, frame, "returned", tmp_path) == 2
    err = capsys.readouterr().err
    assert f"{name}/features.py" in err and "already exist(s): pass --force" in err
    assert not (tmp_path / "models" / f"{name}.yaml").exists()  # refused: nothing written
    assert run_scaffold(name, frame, "returned", tmp_path, "--force") == 0
    assert loader.declared_code_errors(load_model_config(tmp_path / "models" / f"{name}.yaml")) == []


@pytest.mark.parametrize(("name", "message"), [("class", "is a Python keyword"), ("yaml", "already an importable")])
def test_a_name_no_package_can_take_is_refused(tmp_path, capsys, name, message):
    frame = sample(rows=60).drop(columns=["minutes", "segment"])
    assert run_scaffold(name, frame, "returned", tmp_path) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_the_engineered_column_is_an_identifier_unlike_any_column():
    frame = pd.DataFrame({"Basket EUR": [1.0], "n-items": [2], "basket_eur_per_n_items": ["taken"], "y": [0]})
    declaration = {
        "features": [
            {"name": "Basket EUR", "type": "numeric"},
            {"name": "n-items", "type": "numeric"},
            {"name": "basket_eur_per_n_items", "type": "categorical"},
        ]
    }
    feature = choose_feature(frame, declaration)
    assert (feature.kind, feature.column, feature.inputs) == (
        "ratio",
        "basket_eur_per_n_items_2",
        ("Basket EUR", "n-items"),
    )
    assert feature.class_name == "BasketEurPerNItems2" and feature.factory == "add_basket_eur_per_n_items_2"
    only_text = choose_feature(frame, {"features": [{"name": "basket_eur_per_n_items", "type": "categorical"}]})
    assert (only_text.kind, only_text.inputs) == ("missing_count", ("basket_eur_per_n_items",))
