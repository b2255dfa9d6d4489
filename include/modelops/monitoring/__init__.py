"""Monitoring stage: one day of served traffic against the training baseline, and what to do.

SageMaker Model Monitor's loop, for one model and one UTC day, one module per step:

1. :mod:`.live_data` streams the day's capture files (:mod:`.capture_format`) one Parquet record
   batch at a time into a :class:`modelops.drift.detect.StreamingProfile` per *served model
   version* (each built from that version's own baseline, found by :mod:`.references`), keeps a
   bounded data-quality sample per version (:mod:`.sample`) and joins late labels (:mod:`.labels`).
2. :mod:`.quality` checks the sample against the baseline's constraints as a GX suite;
   :func:`modelops.drift.detect.compare` judges drift; :mod:`.performance` scores the served
   predictions against the labels with the training scorers.
3. :mod:`.report` assembles one JSON-safe report (its schema is documented there),
   :mod:`.report_html` a self-contained page; :mod:`.day_report` runs steps 1-3 (reads only).
4. :mod:`.decision` (pure) turns the report and earlier decisions into ``retrain`` or
   ``no_action``, rationed by :mod:`.cooldown`; :mod:`.storage` keeps reports and decisions per
   day; :mod:`.notify` logs the alerts and posts them to the model's webhook.

:mod:`.steps` holds the monitor DAG's task callables.

Memory: bounded by features x bins, not rows. Drift state is a ``StreamingProfile`` (histogram
counts on the baseline's edges, moments, a 2,000-value reservoir per numeric feature, bounded
category counts); one capture file is in memory at a time, processed in record batches of
``chunk_rows``; the quality sample is at most ``quality_sample_rows`` rows per version. What grows
with traffic is only the label join: the day's labels (+ lag) and, for labelled rows, the
prediction (+ probabilities for classifiers).
"""
