"""Silence output that native code (TensorFlow's C++ converter, TFLite Micro's allocator, the
TorchScript exporter) writes straight to file descriptors 1 and 2, bypassing Python."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def silenced(*fds: int) -> Iterator[None]:
    """Point each of ``fds`` (default: stdout and stderr) at /dev/null for the duration."""
    fds = fds or (1, 2)
    saved = [os.dup(fd) for fd in fds]
    try:
        with open(os.devnull, "w") as devnull:
            for fd in fds:
                os.dup2(devnull.fileno(), fd)
            yield
    finally:
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)
