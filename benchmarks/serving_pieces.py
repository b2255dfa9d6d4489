"""Where the time goes inside one request, in-process and without HTTP: our request path with the
compiled scorer and with the pipeline, and MLflow's, on the same model and bodies."""

from __future__ import annotations

import dataclasses
import io
import json
import statistics
import time

CONCURRENCY = 8


class _Blocks:
    """Stands in for the capture writer: keeps what the request path hands over."""

    def __init__(self) -> None:
        self.blocks: list = []

    def enqueue(self, stream, model_name, day, rows, schema) -> None:
        self.blocks.append(rows)


def median_ms(fn, repeat: int) -> float:
    """Median CPU ms of this thread (robust to a busy machine; BLAS/OpenMP limited to 1 thread)."""
    fn()
    samples = []
    for _ in range(repeat):
        t0 = time.thread_time()
        fn()
        samples.append(time.thread_time() - t0)
    return round(statistics.median(samples) * 1000, 3)


def piece_timings(model, tracking_uri: str, bodies: dict[str, dict[str, list[bytes]]], version: str = "1") -> dict:
    """Median CPU ms of each step of the request paths, on the same model and bodies, no HTTP."""
    import mlflow
    from mlflow.pyfunc.scoring_server import infer_and_parse_data, predictions_to_json
    from threadpoolctl import threadpool_limits

    from modelops.serving.champion import ModelSlot, load_model_version
    from modelops.serving.columns import check_records, frame_of_columns, model_columns
    from modelops.serving.scoring import PendingPrediction, score_batch
    from modelops.serving.validation import parse_json_body, records_of_body

    compiled = load_model_version(model, tracking_uri, version)
    pipeline = dataclasses.replace(compiled, scorer=None, scoring_path="pipeline")
    slot = ModelSlot(model)

    def checked(raw: bytes) -> PendingPrediction:
        records, location = records_of_body(parse_json_body(raw, "application/json"), 1000)
        return PendingPrediction(check_records(model, slot.spec, records, location), location, "x" * 32)

    mlflow.set_tracking_uri(tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model.name}/{version}")
    schema = pyfunc.metadata.get_input_schema()
    steps = getattr(compiled.pipeline, "steps", None)
    out: dict = {
        "estimator": type(steps[-1][1]).__name__ if steps else None,
        "scoring_path_loaded": compiled.scoring_path,
        "compiled_scorer": compiled.scorer.description if compiled.scorer is not None else None,
    }

    def pieces(raw: bytes, raw_mlflow: bytes, repeat: int) -> dict:
        records, location = records_of_body(parse_json_body(raw, "application/json"), 1000)
        pending = checked(raw)
        kinds = compiled.categorical_kinds
        frame = frame_of_columns(model, kinds, [pending.columns])[0]
        columns = model_columns(model, kinds, [pending.columns])[0]
        mlflow_df = infer_and_parse_data(json.loads(raw_mlflow), schema)
        mlflow_predictions = pyfunc.predict(mlflow_df)
        result = {
            "ours_request_path": {
                "parse_json_orjson_and_shape": median_ms(
                    lambda: records_of_body(parse_json_body(raw, "application/json"), 1000), repeat
                ),
                "check_records_fast_path": median_ms(
                    lambda: check_records(model, slot.spec, records, location), repeat
                ),
                "score_batch_compiled": median_ms(lambda: score_batch(slot, compiled, [pending], _Blocks()), repeat),
                "score_batch_pipeline": median_ms(lambda: score_batch(slot, pipeline, [pending], _Blocks()), repeat),
            },
            "inside_score_batch": {
                "model_columns": median_ms(lambda: model_columns(model, kinds, [pending.columns]), repeat),
                "compiled_predict_proba": median_ms(lambda: compiled.scorer.predict_proba(columns), repeat)
                if compiled.scorer is not None
                else None,
                "frame_of_columns": median_ms(lambda: frame_of_columns(model, kinds, [pending.columns]), repeat),
                "pipeline_predict_proba": median_ms(lambda: compiled.pipeline.predict_proba(frame), repeat),
            },
            "mlflow": {
                "parse_json_to_dataframe": median_ms(
                    lambda: infer_and_parse_data(json.loads(raw_mlflow), schema), repeat
                ),
                "pyfunc_predict_incl_schema_enforcement": median_ms(lambda: pyfunc.predict(mlflow_df), repeat),
                "predictions_to_json": median_ms(
                    lambda: predictions_to_json(mlflow_predictions, io.StringIO()), repeat
                ),
            },
        }
        result["mlflow"]["total"] = round(sum(result["mlflow"].values()), 3)
        return result

    with threadpool_limits(1):  # the servers run with OMP_NUM_THREADS=1 (StackConfig.environment)
        for scenario, repeat in (("single", 200), ("batch_100", 50)):
            out[scenario] = pieces(bodies[scenario]["modelops"][0], bodies[scenario]["mlflow"][0], repeat)
        eight = [checked(b) for b in bodies["single"]["modelops"][:CONCURRENCY]]
        out["single"]["score_batch_of_8_requests_together_compiled"] = median_ms(
            lambda: score_batch(slot, compiled, eight, _Blocks()), 100
        )
    out["unit"] = "median CPU ms of one call, in-process, one thread, no HTTP"
    return out
