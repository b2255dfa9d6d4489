"""settings: where things are, and the typed readers every stage uses for its own knobs."""

from __future__ import annotations

import pytest

from modelops import settings
from modelops.settings import SettingError, env_bool, env_float, env_int, env_str


def test_load_reads_the_environment_at_call_time(monkeypatch):
    monkeypatch.setenv("MODELOPS_BUCKET", "other")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("MODELOPS_SERVING_TOKEN", "")
    found = settings.load()
    assert found.bucket == "other"
    assert found.boto3_kwargs() == {"region_name": found.aws_region, "endpoint_url": "http://127.0.0.1:1"}
    assert found.serving_token is None  # empty means unset
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert "endpoint_url" not in settings.load().boto3_kwargs()


def test_unset_or_empty_means_the_default():
    assert env_int("N", 7, environ={}) == 7
    assert env_int("N", 7, environ={"N": "  "}) == 7
    assert env_float("F", 0.5, environ={"F": ""}) == 0.5
    assert env_bool("B", True, environ={}) is True
    assert env_str("S", "d", environ={"S": ""}) == "d"
    assert env_str("S", environ={}) is None


def test_values_are_parsed_and_stripped():
    assert env_int("N", 0, environ={"N": " 12 "}) == 12
    assert env_float("F", 0.0, environ={"F": "2.5"}) == 2.5
    assert env_str("S", environ={"S": " x "}) == "x"
    for raw, expected in (("1", True), ("TRUE", True), ("yes", True), ("on", True), ("0", False), ("False", False)):
        assert env_bool("B", not expected, environ={"B": raw}) is expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: env_int("MODELOPS_X", 1, environ={"MODELOPS_X": "1.5"}), "MODELOPS_X='1.5' is not an integer"),
        (lambda: env_int("MODELOPS_X", 1, minimum=1, environ={"MODELOPS_X": "0"}), "MODELOPS_X='0' must be at least 1"),
        (lambda: env_int("MODELOPS_X", 1, maximum=9, environ={"MODELOPS_X": "10"}), "must be at most 9"),
        (lambda: env_float("MODELOPS_Y", 1.0, environ={"MODELOPS_Y": "fast"}), "MODELOPS_Y='fast' is not a number"),
        (lambda: env_float("MODELOPS_Y", 1.0, environ={"MODELOPS_Y": "inf"}), "is not a finite number"),
        (lambda: env_float("MODELOPS_Y", 1.0, environ={"MODELOPS_Y": "nan"}), "is not a finite number"),
        (lambda: env_bool("MODELOPS_Z", False, environ={"MODELOPS_Z": "maybe"}), "MODELOPS_Z='maybe' is not a yes/no"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_value(call, message):
    with pytest.raises(SettingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_setting_error_is_a_value_error():
    assert issubclass(SettingError, ValueError)
