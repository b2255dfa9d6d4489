"""A gated challenger for shadow tests on the running stack: the champion's own model registered
again by a run of its own (so scoring it twice must agree exactly), with a copy of the champion's
decision record under that run, as a retrain whose gate passed would have left it."""

from __future__ import annotations

import uuid

from modelops import registry
from modelops.layout import decision_record_key


def gated_copy_of_the_champion(model: str, mlflow_client, store) -> tuple[str, str]:
    """``(version, run_id)`` of a new version of ``model`` holding the champion's artifact."""
    champion = registry.version_for_alias(model, registry.CHAMPION, mlflow_client)
    assert champion is not None, f"'{model}' has no champion to copy"
    run_id = f"shadow-test-{uuid.uuid4().hex[:8]}"
    record = store.get_json(decision_record_key(model, champion.tags["airflow_run_id"]))
    store.put_json(decision_record_key(model, run_id), {**record, "note": "integration test: a gated challenger"})
    tags = dict(champion.tags) | {"airflow_run_id": run_id}
    version = registry.register_version(model, champion.source, champion.run_id, tags, mlflow_client=mlflow_client)
    return str(version.version), run_id
