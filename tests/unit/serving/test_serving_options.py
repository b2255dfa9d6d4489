"""Serving options from the environment: each MODELOPS_SERVING_* variable, and a bad value naming its variable."""

from __future__ import annotations

import pytest

from modelops.serving.options import ServingOptions


def test_serving_options_from_env():
    options = ServingOptions.from_env(
        {"MODELOPS_SERVING_ACCEPT_EVENT_TIME": "true", "MODELOPS_SERVING_BATCH_MAX_ROWS": "50",
         "MODELOPS_SERVING_BATCH_WAIT_MS": "1.5", "MODELOPS_CAPTURE_ENABLED": "no"}
    )  # fmt: skip
    assert options.accept_event_time and options.batch_max_rows == 50 and options.batch_wait_ms == 1.5
    assert not options.capture_enabled
    assert not ServingOptions.from_env({}).accept_event_time
    with pytest.raises(ValueError, match="MODELOPS_SERVING_ACCEPT_EVENT_TIME"):
        ServingOptions.from_env({"MODELOPS_SERVING_ACCEPT_EVENT_TIME": "maybe"})
    with pytest.raises(ValueError, match="MODELOPS_SERVING_BATCH_WAIT_MS"):
        ServingOptions.from_env({"MODELOPS_SERVING_BATCH_WAIT_MS": "-1"})
    assert ServingOptions.from_env({"MODELOPS_SERVING_LOAD_RETRY_SECONDS": "0"}).load_retry_seconds == 0
    with pytest.raises(ValueError, match="MODELOPS_SERVING_LOAD_RETRY_SECONDS"):
        ServingOptions.from_env({"MODELOPS_SERVING_LOAD_RETRY_SECONDS": "soon"})
    assert ServingOptions.from_env({}).alias_poll_seconds == 10.0
    assert ServingOptions.from_env({"MODELOPS_SERVING_ALIAS_POLL_SECONDS": "0"}).alias_poll_seconds == 0
    assert ServingOptions.from_env({"MODELOPS_SERVING_ALIAS_POLL_SECONDS": "2.5"}).alias_poll_seconds == 2.5


def test_the_gil_switch_interval_defaults_to_half_a_millisecond():
    """CPython's 5 ms lets a busy background thread hold the event loop off for 5 ms per turn."""
    assert ServingOptions.from_env({}).gil_switch_ms == 0.5
    assert ServingOptions.from_env({"MODELOPS_SERVING_GIL_SWITCH_MS": "5"}).gil_switch_ms == 5.0


def test_the_shadow_cpus_are_a_cpu_list_of_this_worker_s_cpus_leaving_it_one(monkeypatch):
    from modelops.serving import cpus

    monkeypatch.setattr(cpus, "allowed", lambda: frozenset({0, 1, 2, 3}))
    assert ServingOptions.from_env({}).shadow_cpus == frozenset()
    assert ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_CPUS": "3"}).shadow_cpus == {3}
    assert ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_CPUS": " 0, 2-3 "}).shadow_cpus == {0, 2, 3}
    refused = {
        "two": "must be a CPU list like '1', '2-3' or '0,2-3', got 'two'",
        "1,": "must be a CPU list",
        "3-1": "'3-1' is not a CPU range",
        "0-99999999999": "'0-99999999999' is not a CPU range .first <= last, both 0-8191.",
        "2-5": r"CPU\(s\) 4,5 are not among those this worker may use \(0,1,2,3\)",
        "0-3": r"takes every CPU this worker may use \(0,1,2,3\): leave at least one for the answers",
    }
    for value, message in refused.items():
        with pytest.raises(ValueError, match="MODELOPS_SERVING_SHADOW_CPUS.*" + message):
            ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_CPUS": value})
    with pytest.raises(
        ValueError, match="MODELOPS_SERVING_SHADOW_CPUS needs MODELOPS_SERVING_SHADOW_ISOLATION=process"
    ):
        ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_CPUS": "1", "MODELOPS_SERVING_SHADOW_ISOLATION": "thread"})
    monkeypatch.setattr(cpus, "allowed", lambda: frozenset())  # no sched_setaffinity (not Linux)
    with pytest.raises(ValueError, match="cannot pin processes to CPUs"):
        ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_CPUS": "1"})


def test_the_shadow_gathers_only_when_asked_and_never_past_its_lag():
    assert ServingOptions.from_env({}).shadow_gather_ms == 0
    assert ServingOptions.from_env({"MODELOPS_SERVING_SHADOW_GATHER_MS": "10"}).shadow_gather_ms == 10.0
    with pytest.raises(ValueError, match="MODELOPS_SERVING_SHADOW_GATHER_MS .500 ms. must be below .*0.5 s"):
        ServingOptions.from_env(
            {"MODELOPS_SERVING_SHADOW_GATHER_MS": "500", "MODELOPS_SERVING_SHADOW_MAX_LAG_SECONDS": "0.5"}
        )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELOPS_SERVING_MAX_BATCH", "lots"),
        ("MODELOPS_SERVING_MAX_BATCH", "0"),
        ("MODELOPS_SERVING_MAX_FEEDBACK", "2.5"),
        ("MODELOPS_SERVING_BATCH_MAX_ROWS", "-1"),
        ("MODELOPS_SERVING_BATCH_WAIT_MS", "101"),
        ("MODELOPS_SERVING_LOAD_RETRY_SECONDS", "-1"),
        ("MODELOPS_SERVING_ALIAS_POLL_SECONDS", "-1"),
        ("MODELOPS_SERVING_ALIAS_POLL_SECONDS", "3601"),
        ("MODELOPS_CAPTURE_ENABLED", "maybe"),
        ("MODELOPS_CAPTURE_FLUSH_RECORDS", "many"),
        ("MODELOPS_SERVING_GIL_SWITCH_MS", "fast"),
        ("MODELOPS_SERVING_GIL_SWITCH_MS", "0"),
        ("MODELOPS_SERVING_GIL_SWITCH_MS", "101"),
        ("MODELOPS_SERVING_SHADOW_GATHER_MS", "-1"),
        ("MODELOPS_SERVING_SHADOW_GATHER_MS", "1001"),
    ],
)
def test_a_bad_serving_variable_is_refused_naming_the_variable_and_the_value(variable, value):
    with pytest.raises(ValueError, match=f"{variable}='{value}'"):
        ServingOptions.from_env({variable: value})


def test_unset_or_empty_variables_keep_the_defaults():
    assert ServingOptions.from_env({}) == ServingOptions()
    assert (
        ServingOptions.from_env({"MODELOPS_SERVING_MAX_BATCH": "", "MODELOPS_CAPTURE_ENABLED": " "}) == ServingOptions()
    )
    assert ServingOptions.from_env({"MODELOPS_SERVING_MAX_BATCH": "5"}).max_batch == 5
