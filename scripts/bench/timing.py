"""Shared by the Python baselines of `npm run bench` (as stats.js is by the JS side)."""
import time


def timings(fn, warmup, repeats):
    """Milliseconds of each of `repeats` calls of fn, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out
