"""What `python -m modelops.submit` says of a finished run, read from the retrain run's XComs."""

from __future__ import annotations

from modelops.submit.cli import _outcome
from modelops.training.results import REGISTERED


class FakeAirflow:
    """The REST calls ``_outcome`` makes; an XCom the DAG does not leave is a 404, as in Airflow."""

    def __init__(self, deployed: bool):
        self.deployed = deployed
        self.xcoms = {
            ("gate", "return_value"): {
                "promote": True,
                "reasons": ["better than the champion"],
                "decision_uri": "s3://b/d.json",
            },
            # register is a branch: its return value names the next task; the version is under its own key
            ("register", "return_value"): "promote",
            ("register", REGISTERED): {"version": "7", "model_uri": "models:/churn/7"},
        }

    def xcom(self, dag_id, run_id, task_id, key="return_value", map_index=-1):
        if (task_id, key) not in self.xcoms:
            raise LookupError(f"404 no XCom {task_id}/{key}")
        return self.xcoms[(task_id, key)]

    def task_states(self, dag_id, run_id):
        return {"gate": "success", "register": "success", "deploy": "success" if self.deployed else "skipped"}


def test_a_promoted_submission_names_the_registered_version():
    status, text = _outcome(
        FakeAirflow(deployed=True), "churn", "retrain_churn", {"dag_run_id": "r1", "state": "success"}
    )
    assert status == 0
    assert text.splitlines()[0] == "promoted and deployed: churn version 7"
    assert "gate: PROMOTE" in text and "decision record: s3://b/d.json" in text


def test_a_kept_champion_names_no_version():
    status, text = _outcome(
        FakeAirflow(deployed=False), "churn", "retrain_churn", {"dag_run_id": "r1", "state": "success"}
    )
    assert status == 0 and "promoted and deployed" not in text
