"""The post-deploy wait on every serving worker: it passes when all live workers report the version,
fails naming the lagging one, ignores stale heartbeats, and says so when there are none at all."""

from __future__ import annotations

import datetime as dt

import pytest

from modelops.deploy import convergence
from modelops.serving import heartbeat

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def beat(
    store, worker_id: str, version: str | None, *, age: float = 0.0, poll: float = 10.0, model: str = "toy", tagged=None
):
    worker = heartbeat.WorkerIdentity(id=worker_id, host="h", pid=1, started_at=NOW)
    served = {model: {"version": version, "alias": "champion"} | ({"tagged_path": tagged} if tagged else {})}
    heartbeat.write_heartbeat(store, heartbeat.heartbeat_record(worker, served, poll, NOW - dt.timedelta(seconds=age)))


class FakeTime:
    """A clock that advances only when the wait sleeps; ``on_sleep`` runs at each sleep (a worker catching up)."""

    def __init__(self, on_sleep=None):
        self.t = 0.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds
        if self.on_sleep:
            self.on_sleep(self)

    def now(self) -> dt.datetime:
        return NOW + dt.timedelta(seconds=self.t)


def wait(store, fake: FakeTime, version: str = "3", **kw):
    return convergence.wait_for_workers("toy", version, store, clock=fake.clock, sleep=fake.sleep, now=fake.now, **kw)


def test_passes_once_every_live_worker_reports_the_version(store):
    beat(store, "w-a", "3")
    beat(store, "w-b", "2")

    def b_catches_up(fake):
        if fake.t >= 5:
            beat(store, "w-b", "3", age=-fake.t)

    fake = FakeTime(b_catches_up)
    result = wait(store, fake)
    assert result.converged and result.heartbeats
    assert result.confirmed == ["w-a", "w-b"] and result.lagging == {}
    assert 5 <= result.waited_seconds <= 6 and fake.sleeps and max(fake.sleeps) <= convergence.CHECK_EVERY_SECONDS
    assert result.note == "2 live serving worker(s) confirmed version 3"


def test_fails_naming_the_lagging_worker_and_what_it_serves(store):
    beat(store, "w-a", "3")
    beat(store, "w-late", "2")
    result = wait(store, FakeTime(), timeout=20)  # within the records' own life (3 polls of 10 s)
    assert not result.converged and result.waited_seconds == pytest.approx(20)
    assert result.confirmed == ["w-a"] and result.lagging == {"w-late": "2"}
    message = result.failure("toy")
    assert "w-late (serves 2)" in message and "confirmed: w-a" in message and "version 3" in message


def test_stale_heartbeats_are_ignored(store):
    beat(store, "w-a", "3")
    beat(store, "w-dead", "1", age=31.0)  # older than 3 polls of 10 s: gone without deleting its record
    assert [r["worker_id"] for r in heartbeat.live_workers(store, NOW)] == ["w-a"]
    result = wait(store, FakeTime())
    assert result.converged and result.confirmed == ["w-a"] and "w-dead" not in result.lagging


def test_a_worker_not_serving_the_model_lags(store):
    beat(store, "w-a", "3")
    beat(store, "w-other", "3", model="other")
    result = wait(store, FakeTime(), timeout=0)
    assert not result.converged and result.lagging == {"w-other": None}
    assert "w-other (serves nothing)" in result.failure("toy")


def test_no_heartbeats_keeps_todays_behaviour_and_says_so(store):
    fake = FakeTime()
    result = wait(store, fake)
    assert result.converged and not result.heartbeats and result.confirmed == [] and fake.sleeps == []
    assert "no live serving worker heartbeat" in result.note


def test_timeout_from_the_workers_poll_interval_or_the_variable():
    records = [{"poll_seconds": 2}, {"poll_seconds": 5}]
    assert convergence.timeout_for(records, environ={}) == 3 * 5 + convergence.MARGIN_SECONDS
    assert convergence.timeout_for(records, environ={convergence.TIMEOUT_VARIABLE: "7"}) == 7
    with pytest.raises(ValueError, match=convergence.TIMEOUT_VARIABLE):
        convergence.timeout_for(records, environ={convergence.TIMEOUT_VARIABLE: "-1"})


def test_a_worker_that_died_without_deleting_its_record_drops_out_once_stale(store):
    beat(store, "w-a", "3")
    beat(store, "w-killed", "2", age=25.0)  # still live for 5 s more, then stale: the wait does not hang on it
    result = wait(store, FakeTime())
    assert result.converged and result.confirmed == ["w-a"] and 5 <= result.waited_seconds <= 6


def test_every_heartbeat_gone_while_waiting_fails(store):
    beat(store, "w-killed", "2", age=25.0)
    result = wait(store, FakeTime())
    assert not result.converged and result.confirmed == [] and "went stale or was deleted" in result.failure("toy")


def test_with_a_path_a_worker_that_loaded_the_version_before_its_tag_lags_until_it_reloads(store):
    beat(store, "w-a", "3", tagged="compiled")
    beat(store, "w-b", "3", tagged="pipeline")  # followed the alias before the parity gate tagged it
    beat(store, "w-c", "3")  # a heartbeat without the field: taken at its version

    def b_reloads(fake):
        if fake.t >= 4:
            beat(store, "w-b", "3", age=-fake.t, tagged="compiled")

    fake = FakeTime(b_reloads)
    result = wait(store, fake, path="compiled")
    assert result.converged and result.confirmed == ["w-a", "w-b", "w-c"] and 4 <= result.waited_seconds <= 5
    stuck = wait(store, FakeTime(), path="pipeline", timeout=3)
    assert not stuck.converged and set(stuck.lagging) == {"w-a", "w-b"}
    assert stuck.lagging["w-a"] == "3, loaded before its pipeline verdict"
