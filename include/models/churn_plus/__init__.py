"""churn_plus: the data scientist's own code for the churn_plus model (include/models/churn_plus.yaml)."""
