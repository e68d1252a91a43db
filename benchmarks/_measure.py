"""What every benchmark here shares: time a call, then measure its peak memory."""

from __future__ import annotations

import time
import tracemalloc


def measure(fn, repeat: int = 3):
    """Return ``(result, best seconds of repeat runs, peak MB)``.

    Timing and memory are separate runs, because tracemalloc slows
    allocation-heavy code; the peak counts Python allocations, numpy and pandas
    buffers included.
    """
    seconds = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, min(seconds), peak / 2**20
