"""Data stage: batch validation (GX), the training snapshot and the training baseline."""
