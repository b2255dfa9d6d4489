"""What a model version was made from: the code version (environment first, then git, else
unknown), declaration and suite hashes that follow meaning rather than spelling, library versions."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from modelops import versioning
from modelops.config import load_model_config

COMMIT = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture(autouse=True)
def _no_image_version(monkeypatch):
    """Tests run outside an image: the git path unless a test sets the variables."""
    monkeypatch.delenv(versioning.CODE_VERSION_ENV, raising=False)
    monkeypatch.delenv(versioning.BUILD_TIME_ENV, raising=False)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit of one tracked file."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    _git(root, "config", "user.email", "test@example.invalid")
    _git(root, "config", "user.name", "test")
    (root / "code.py").write_text("x = 1\n")
    _git(root, "add", "code.py")
    _git(root, "commit", "-q", "-m", "first")
    return root


# -- code version ------------------------------------------------------------------------------


def test_git_version_is_the_checked_out_commit(repo):
    version = versioning.git_version(repo)
    assert COMMIT.match(version) and version == _git(repo, "rev-parse", "HEAD")


def test_a_changed_tracked_file_marks_the_version_dirty(repo):
    clean = versioning.git_version(repo)
    (repo / "code.py").write_text("x = 2\n")
    assert versioning.git_version(repo) == f"{clean}-dirty"


def test_an_untracked_file_does_not_mark_the_version_dirty(repo):
    (repo / "notes.txt").write_text("scratch\n")
    assert COMMIT.match(versioning.git_version(repo))


def test_outside_a_repository_the_version_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # never find a repository above
    plain = tmp_path / "plain"
    plain.mkdir()
    assert versioning.git_version(plain) == versioning.UNKNOWN
    assert versioning.git_version(tmp_path / "missing") == versioning.UNKNOWN


def test_without_git_the_version_is_unknown(repo, tmp_path, monkeypatch):
    empty = tmp_path / "no-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert versioning.git_version(repo) == versioning.UNKNOWN


def test_a_repository_without_commits_is_unknown(tmp_path):
    _git(tmp_path, "init", "-q")
    assert versioning.git_version(tmp_path) == versioning.UNKNOWN


def test_the_environment_wins_over_git(repo, monkeypatch):
    monkeypatch.setenv(versioning.CODE_VERSION_ENV, "0123abc")
    monkeypatch.setenv(versioning.BUILD_TIME_ENV, "2026-12-02T10:00:00Z")
    assert versioning.code_version(repo) == "0123abc"
    assert versioning.build_time() == "2026-12-02T10:00:00Z"


def test_an_empty_environment_variable_falls_back_to_git(repo, monkeypatch):
    monkeypatch.setenv(versioning.CODE_VERSION_ENV, "  ")
    monkeypatch.setenv(versioning.BUILD_TIME_ENV, "")
    assert versioning.code_version(repo) == versioning.git_version(repo)
    assert versioning.build_time() == versioning.NONE


def test_the_git_answer_is_cached_per_process(repo):
    first = versioning.code_version(repo)
    (repo / "code.py").write_text("x = 3\n")
    assert versioning.code_version(repo) == first  # asked once per process
    assert versioning.git_version(repo) == f"{first}-dirty"


def test_this_checkout_answers_with_one_of_its_commits():
    if versioning.git_version(versioning.REPO_ROOT) == versioning.UNKNOWN:
        pytest.skip("this copy of the code is not a git checkout")
    versioning._cached_git_version.cache_clear()
    version = versioning.code_version()
    assert re.match(r"^[0-9a-f]{40}(-dirty)?$", version), version
    _git(versioning.REPO_ROOT, "cat-file", "-e", f"{version[:40]}^{{commit}}")  # others may commit meanwhile


# -- declaration and suite hashes --------------------------------------------------------------

TIDY = """\
name: toy
problem_type: binary_classification
target: y
features:
  - {name: x0, type: numeric}
  - {name: segment, type: categorical}
metrics: {primary: roc_auc}
training: {cv_folds: 3}
"""

UNTIDY = """\
# the same model, written differently
name:   toy
problem_type: binary_classification   # a comment
target: "y"

metrics:
  primary: roc_auc
features:
  - name: x0
    type: numeric
  - name: segment
    type: categorical
    nullable: false   # the default, written out
training:
    cv_folds: 3
"""


def _declared(tmp_path: Path, folder: str, text: str):
    path = tmp_path / folder / "toy.yaml"
    path.parent.mkdir()
    path.write_text(text)
    return load_model_config(path)


def test_declaration_hash_ignores_whitespace_comments_order_and_written_defaults(tmp_path):
    tidy, untidy = _declared(tmp_path, "a", TIDY), _declared(tmp_path, "b", UNTIDY)
    assert re.match(r"^[0-9a-f]{64}$", versioning.declaration_hash(tidy))
    assert versioning.declaration_hash(tidy) == versioning.declaration_hash(untidy)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("training: {cv_folds: 3}", "training: {cv_folds: 4}"),
        ("{name: segment, type: categorical}", "{name: segment, type: categorical, nullable: true}"),
        ("metrics: {primary: roc_auc}", "metrics: {primary: f1}"),
    ],
)
def test_declaration_hash_changes_with_a_setting(tmp_path, old, new):
    assert old in TIDY
    before, after = _declared(tmp_path, "a", TIDY), _declared(tmp_path, "b", TIDY.replace(old, new))
    assert versioning.declaration_hash(before) != versioning.declaration_hash(after)


SUITE = {
    "name": "toy",
    "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "x0"}, "meta": {}}],
    "meta": {},
}


@pytest.fixture
def suites(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "expectations"
    folder.mkdir()
    monkeypatch.setenv("MODELOPS_EXPECTATIONS_DIR", str(folder))
    return folder


def test_suite_hash_follows_the_expectations_not_the_indentation(tmp_path, suites):
    model = _declared(tmp_path, "a", TIDY)
    (suites / "toy.json").write_text(json.dumps(SUITE, indent=2))
    first = versioning.suite_hash(model)
    (suites / "toy.json").write_text(json.dumps(dict(reversed(list(SUITE.items())))))
    assert versioning.suite_hash(model) == first
    more = SUITE | {
        "expectations": [*SUITE["expectations"], {"type": "expect_column_to_exist", "kwargs": {"column": "segment"}}]
    }
    (suites / "toy.json").write_text(json.dumps(more, indent=2))
    assert versioning.suite_hash(model) != first


def test_suite_hash_is_none_without_a_suite_and_refuses_an_unreadable_one(tmp_path, suites):
    model = _declared(tmp_path, "a", TIDY)
    assert versioning.suite_hash(model) == versioning.NONE
    (suites / "toy.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"toy\.json"):
        versioning.suite_hash(model)


def test_the_shipped_models_hash_their_reviewed_suites():
    from modelops.config import load_all_models

    for model in load_all_models().values():
        assert model.suite_path.is_file()
        assert versioning.suite_hash(model) == versioning.canonical_sha256(json.loads(model.suite_path.read_text()))


# -- libraries and the tags --------------------------------------------------------------------


def test_library_versions_are_the_running_ones():
    import numpy
    import pandas
    import sklearn

    versions = versioning.library_versions()
    assert versions["scikit-learn"] == sklearn.__version__
    assert versions["pandas"] == pandas.__version__
    assert versions["numpy"] == numpy.__version__
    assert versions["mlflow"] != "not installed" and versions["great-expectations"] != "not installed"


def test_version_tags_name_every_tag_with_a_string_value(tmp_path, suites, monkeypatch):
    import sklearn

    monkeypatch.setenv(versioning.CODE_VERSION_ENV, "feedbeef")
    model = _declared(tmp_path, "a", TIDY)
    (suites / "toy.json").write_text(json.dumps(SUITE))
    tags = versioning.version_tags(model)
    assert tuple(tags) == versioning.VERSION_TAGS
    assert all(isinstance(v, str) and v for v in tags.values())
    assert tags["modelops.code_version"] == "feedbeef"
    assert tags["modelops.build_time"] == versioning.NONE
    assert tags["modelops.declaration_sha256"] == versioning.declaration_hash(model)
    assert tags["modelops.suite_sha256"] == versioning.suite_hash(model) != versioning.NONE
    assert tags["modelops.sklearn_version"] == sklearn.__version__
    assert {"modelops.pandas_version", "modelops.numpy_version", "modelops.python_version"} <= set(tags)


def test_recorded_version_tags_keep_only_version_tags():
    run_tags = {"modelops.code_version": "abc", "modelops.suite_sha256": "", "candidate": "linear"}
    assert versioning.recorded_version_tags(run_tags) == {"modelops.code_version": "abc"}
    assert versioning.recorded_version_tags(None) == {}
