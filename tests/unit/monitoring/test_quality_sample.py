"""The data-quality sample: the same rows whatever the chunking or the order of the files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelops.monitoring.sample import QualitySample


def test_quality_sample_does_not_depend_on_chunking_or_order():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "request_id": [f"r{i // 7}" for i in range(3000)],
            "record_index": np.arange(3000) % 7,
            "x": rng.normal(size=3000),
        }
    )
    forward = QualitySample(200)
    for start in range(0, 3000, 250):
        forward.add(frame.iloc[start : start + 250])
    backward = QualitySample(200)
    for start in reversed(range(0, 3000, 999)):
        backward.add(frame.iloc[start : start + 999])
    pd.testing.assert_frame_equal(forward.frame, backward.frame)
    assert len(forward) == 200 and forward.seen == 3000
