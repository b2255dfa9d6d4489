"""Training stage: candidate pipelines, training rules, selection, evaluation and the promotion gate."""
