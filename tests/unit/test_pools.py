"""modelops.pools: the training pool is created, corrected and left alone as the declaration says."""

from __future__ import annotations

import pytest

from modelops.airflow_api import AirflowError
from modelops.config import get_model
from modelops.pools import ensure_training_pool, training_pool, training_queue


class FakeAirflow:
    """The three pool calls of Airflow's REST API, on a dict."""

    base_url = "http://airflow.test"

    def __init__(self, pools=None, fail_with: Exception | None = None):
        self.pools = dict(pools or {})
        self.calls: list[tuple[str, str]] = []
        self.fail_with = fail_with

    def request(self, method, path, json=None, **_):
        self.calls.append((method, path))
        if self.fail_with is not None:
            raise self.fail_with
        name = path.removeprefix("/pools").strip("/")
        if method == "GET":
            if name not in self.pools:
                raise AirflowError(f"GET {path}: 404 not found", 404)
            return {"name": name, "slots": self.pools[name]}
        if method == "POST":
            self.pools[json["name"]] = json["slots"]
            return json
        if method == "PATCH":
            self.pools[name] = json["slots"]
            return json
        raise AssertionError(method)


@pytest.fixture
def churn():
    return get_model("churn")


def test_missing_pool_is_created_with_the_declared_slots(churn):
    api = FakeAirflow()
    assert ensure_training_pool(churn, api)["action"] == "created"
    assert api.pools == {"training_churn": churn.training.parallel_candidates}


def test_existing_pool_is_left_alone_or_corrected(churn):
    api = FakeAirflow({"training_churn": churn.training.parallel_candidates})
    assert ensure_training_pool(churn, api)["action"] == "unchanged"
    assert [m for m, _ in api.calls] == ["GET"]
    changed = churn.model_copy(update={"training": churn.training.model_copy(update={"parallel_candidates": 5})})
    assert ensure_training_pool(changed, api) == {"pool": "training_churn", "slots": 5, "action": "updated"}
    assert api.pools["training_churn"] == 5


@pytest.mark.parametrize(
    "error", [AirflowError("GET /pools/training_churn: 403 forbidden", 403), ConnectionError("refused")]
)
def test_unreachable_or_refusing_api_names_the_pool_and_the_fix(churn, error):
    with pytest.raises(AirflowError) as raised:
        ensure_training_pool(churn, FakeAirflow(fail_with=error))
    message = str(raised.value)
    assert "training_churn" in message and "airflow pools set training_churn" in message


def test_queue_comes_from_the_environment(monkeypatch):
    assert training_queue() == "training"
    monkeypatch.setenv("MODELOPS_TRAINING_QUEUE", "gpu")
    assert training_queue() == "gpu"
    assert training_pool("churn") == "training_churn"


def test_parallel_candidates_is_bounded(churn):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="parallel_candidates"):
        type(churn.training).model_validate({**churn.training.model_dump(), "parallel_candidates": 0})
