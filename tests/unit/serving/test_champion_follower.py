"""Every serving worker follows the champion alias by itself and says what it serves in a heartbeat:
a moved alias is swapped in, an explicit-version reload stays until the alias next moves, a reload in
progress wins, heartbeats are written, expire and are deleted at clean shutdown."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from fastapi.testclient import TestClient
from tests.unit.serving.serving_helpers import AUTH, BUCKET, CONFIGS, log_and_register, make_app, make_frame, record

from modelops import registry
from modelops.layout import serving_worker_key
from modelops.serving import heartbeat
from modelops.training.pipelines import build_pipeline


@pytest.fixture(scope="module")
def versions(env):
    """toy version 1 (champion at start, from conftest) and a second version, registered once."""
    import mlflow

    config = CONFIGS["toy"]
    frame = make_frame(config.problem_type)
    pipeline = build_pipeline(config, "linear").fit(frame[config.feature_names], frame["y"])
    v2 = log_and_register(mlflow, env["client"], config, pipeline, env["experiment_id"], "toy-2")
    return "1", str(v2)


@pytest.fixture
def app(env, versions):
    env["client"].set_registered_model_alias("toy", registry.CHAMPION, versions[0])
    app = make_app(env, alias_poll_seconds=3600.0)  # the test drives each poll itself
    yield app
    env["client"].set_registered_model_alias("toy", registry.CHAMPION, versions[0])


def move_champion(env, version: str) -> None:
    env["client"].set_registered_model_alias("toy", registry.CHAMPION, version)


def served(client) -> str | None:
    return client.get("/health").json()["models"]["toy"].get("version")


def stored_heartbeat(env, worker_id: str) -> dict | None:
    try:
        body = env["s3"].get_object(Bucket=BUCKET, Key=serving_worker_key(worker_id))["Body"].read()
    except env["s3"].exceptions.NoSuchKey:
        return None
    return json.loads(body)


def test_a_moved_alias_is_swapped_in_and_reported(env, versions, app):
    v1, v2 = versions
    with TestClient(app) as client:
        follower, state = app.state.follower, app.state.serving
        assert served(client) == v1 and follower.follow_once() == []  # alias where it was: nothing to do
        move_champion(env, v2)
        assert follower.follow_once() == ["toy"]
        assert served(client) == v2 and state.slots["toy"].current.alias == registry.CHAMPION
        assert client.post("/models/toy/predict", json={"record": record(0)}).json()["version"] == v2
        beat = stored_heartbeat(env, state.worker.id)
        assert beat["models"]["toy"] == {"version": v2, "alias": "champion", "tagged_path": "pipeline"}
        assert follower.follow_once() == []  # seen: no second load


def test_an_explicit_reload_stays_until_the_alias_moves(env, versions, app):
    v1, v2 = versions
    move_champion(env, v2)
    with TestClient(app) as client:
        follower = app.state.follower
        assert served(client) == v2
        pinned = client.post("/models/toy/reload", headers=AUTH, json={"version": v1})
        assert pinned.status_code == 200 and pinned.json()["worker"] == app.state.serving.worker.id
        assert follower.follow_once() == [] and served(client) == v1  # champion still v2, unmoved: the pin stays
        move_champion(env, v1)  # moves onto what serves: nothing to load
        assert follower.follow_once() == [] and served(client) == v1
        move_champion(env, v2)  # moves again: followed
        assert follower.follow_once() == ["toy"] and served(client) == v2


def test_a_version_tagged_after_the_worker_loaded_it_is_loaded_again(env, versions, app):
    """The deploy's parity gate tags the version after the alias moved: a worker that followed the
    alias in between loads it again with the tag, and says so in its heartbeat."""
    from modelops.serving.compiled import COMPILED, SCORING_PATH_TAG

    v1, v2 = versions
    try:
        with TestClient(app) as client:
            follower, state = app.state.follower, app.state.serving
            move_champion(env, v2)
            assert follower.follow_once() == ["toy"] and state.slots["toy"].current.tagged_path == "pipeline"
            before = state.slots["toy"].current
            env["client"].set_model_version_tag("toy", v2, SCORING_PATH_TAG, COMPILED)
            assert follower.follow_once() == ["toy"]
            after = state.slots["toy"].current
            assert after is not before and after.version == v2 and after.tagged_path == COMPILED
            assert stored_heartbeat(env, state.worker.id)["models"]["toy"]["tagged_path"] == COMPILED
            assert follower.follow_once() == []  # the tag seen: no third load
            assert served(client) == v2
    finally:
        env["client"].delete_model_version_tag("toy", v2, SCORING_PATH_TAG)


def test_a_reload_in_progress_wins_over_the_alias_watch(env, versions, app):
    v1, v2 = versions
    with TestClient(app) as client:
        state = app.state.serving
        move_champion(env, v2)
        with state.slots["toy"].reload_lock:
            assert state.follow_champions() == []
        assert served(client) == v1 and state.slots["toy"].alias_seen == v1
        assert state.follow_champions() == ["toy"] and served(client) == v2


def test_heartbeats_are_written_read_expire_and_are_deleted(env, versions, app):
    with TestClient(app) as client:
        worker = client.get("/health").json()["worker"]
        deadline = time.monotonic() + 10
        while stored_heartbeat(env, worker["id"]) is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the follower's first beat, written as it starts
        beat = stored_heartbeat(env, worker["id"])
        assert beat is not None and beat["pid"] == worker["pid"] and beat["host"] == worker["host"]
        assert beat["started_at"] == worker["started_at"] and beat["poll_seconds"] == 3600.0
        assert set(beat["models"]) == set(CONFIGS)
        store = app.state.follower.store
        now = dt.datetime.fromisoformat(beat["heartbeat_at"])
        assert [r["worker_id"] for r in heartbeat.live_workers(store, now)] == [worker["id"]]
        later = now + dt.timedelta(seconds=3 * 3600 + 1)
        assert heartbeat.live_workers(store, later) == []  # stale: three polls without a beat
        response = client.post("/models/toy/predict", json={"record": record(0)})
        assert response.headers["X-Modelops-Worker"] == worker["id"]
    assert stored_heartbeat(env, worker["id"]) is None  # deleted at clean shutdown


def test_no_follower_when_polling_is_off(env):
    app = make_app(env, alias_poll_seconds=0)
    assert app.state.follower is None
    with TestClient(app) as client:
        worker_id = client.get("/health").json()["worker"]["id"]
    assert stored_heartbeat(env, worker_id) is None
