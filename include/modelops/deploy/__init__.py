"""Deploy stage: move the champion alias, reload serving, smoke-test it and roll back."""
