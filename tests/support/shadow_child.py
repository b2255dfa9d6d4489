"""A stand-in shadow child for tests of the worker's side (modelops.serving.shadow_process): it
reads the calls off the pipe when told to (``ShadowProcess`` then sees the pipe's room come back)
but never finishes one, so calls stay in flight until it is killed."""

from __future__ import annotations

import time


def never_finishes(requests, control, shared, *_args) -> None:
    while True:
        time.sleep(3600)
