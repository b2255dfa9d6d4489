"""A model a data scientist trains on their own machine and logs to the tracking server (the
integration and compose tests of ``python -m modelops.submit`` share it)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from modelops.local import datagen


def laptop_model(model, manifest_uri: str | None, columns: list[str] | None = None):
    """What a data scientist trains on their own machine and logs to the tracking server."""
    import mlflow
    from mlflow.models import infer_signature
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    columns = columns or model.feature_names
    days = [dt.date(2026, 9, 1) + dt.timedelta(days=i) for i in range(20)]
    frame = pd.concat([datagen.generate_batch("churn", day, 1000, seed=3) for day in days], ignore_index=True)
    if "age" in columns:
        frame["age"] = 40
    categorical = [c for c in columns if c in model.categorical_features]
    encode = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
    pipeline = Pipeline(
        [
            ("encode", ColumnTransformer([("cat", encode, categorical)], remainder="passthrough")),
            ("model", HistGradientBoostingClassifier(max_iter=150, random_state=0)),
        ]
    ).fit(frame[columns], frame[model.target])
    mlflow.set_experiment("alice-laptop")
    with mlflow.start_run() as run:
        if manifest_uri:
            mlflow.set_tag("modelops.training_manifest", manifest_uri)
        mlflow.log_metric("roc_auc", 0.999)  # what they claim: never read
        example = frame[columns].head(5)
        mlflow.sklearn.log_model(
            pipeline, name="model", serialization_format="skops", input_example=example,
            signature=infer_signature(example, pipeline.predict(example)),
            skops_trusted_types=["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
        )  # fmt: skip
    return f"runs:/{run.info.run_id}/model", run.info.run_id
