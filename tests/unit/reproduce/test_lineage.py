"""Which declaration a rebuild uses: the one recorded with the training run; for a version from
before declarations were recorded, today's file only while its hash is still the version's."""

from __future__ import annotations

import pytest
from tests.unit.training.training_helpers import make_config

from modelops import versioning
from modelops.reproduce import lineage
from modelops.reproduce.lineage import NotReproducible, declaration_then


def test_the_recorded_declaration_is_used_even_when_the_file_changed(monkeypatch):
    then, now = make_config(), make_config(training={"cv_folds": 3, "random_seed": 99})
    monkeypatch.setattr(lineage, "_current_config", lambda model: now)
    tags = {versioning.DECLARATION_TAG: versioning.declaration_hash(then)}

    config, source = declaration_then("toy", "4", versioning.declaration_record(then), tags)

    assert config == then and config.training.random_seed == 7
    assert source.startswith("recorded with the training run")


def test_without_a_recorded_declaration_an_unchanged_file_is_used(monkeypatch):
    then = make_config()
    monkeypatch.setattr(lineage, "_current_config", lambda model: then)

    config, source = declaration_then("toy", "4", None, {versioning.DECLARATION_TAG: versioning.declaration_hash(then)})

    assert config == then and "unchanged since" in source


def test_without_a_recorded_declaration_a_changed_file_is_refused_naming_both_hashes(monkeypatch):
    then, now = make_config(), make_config(training={"cv_folds": 3, "random_seed": 99})
    monkeypatch.setattr(lineage, "_current_config", lambda model: now)
    recorded = versioning.declaration_hash(then)

    with pytest.raises(NotReproducible) as caught:
        declaration_then("toy", "4", None, {versioning.DECLARATION_TAG: recorded})

    message = str(caught.value)
    assert recorded in message and versioning.declaration_hash(now) in message
    assert "settings (seed, split, row caps) are unknown" in message


def test_the_recorded_thread_count_is_the_one_openmp_runs_with():
    import sklearn.ensemble  # noqa: F401 - loads scikit-learn's OpenMP runtime
    from threadpoolctl import threadpool_limits

    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="openmp"):
            assert versioning.openmp_threads() == str(threads)
