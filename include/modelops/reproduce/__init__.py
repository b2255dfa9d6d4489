"""Every registered version reproducible, its training code in the open.

``python -m modelops.reproduce <model> <version>`` rebuilds a version from its lineage alone (the
snapshot manifest with object ETags, the recorded declaration, suite hash, code and library
versions, the chosen candidate, parameters and seed) in a fresh process and says whether it
matches: identical predictions and probabilities on the evaluation split, identical model bytes
(a canonical serialisation) where the estimator is deterministic; a changed input is named.
``--export DIR`` writes the version as a standalone pandas + scikit-learn training script.

Modules: ``lineage`` (what the version says it was made from), ``inputs`` (then versus now),
``materialise`` (verified local copies), ``rebuild`` (the fresh process), ``digest`` (canonical
model bytes), ``report`` (verdict, text, JSON), ``runner`` (the whole reproduction), ``render``
and ``export`` with ``script_template`` (the standalone script), ``cli``.
"""
