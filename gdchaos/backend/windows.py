"""Scoring of every candidate exponential-phase window of one ln D(t) curve (the ball fit's search).

Same arithmetic, in the same order, as the NumPy formulas documented in
:func:`gdchaos.analysis.fit.window_grid`, one window at a time: no arrays of all windows unless
they are asked for (the fit's debug output), and the best window found in the same pass.
Compiled without ``contract`` (no fused multiply-add), so each operation rounds as NumPy's.
"""
from __future__ import annotations

import numpy as np

from gdchaos.backend.jit import exact

# columns of the per-window record
WINDOW_COLUMNS = ("start", "end", "slope", "intercept", "r2", "score", "steepest", "tau")


@exact(inline="always")
def _line(cums, lo, hi):
    """Least-squares line on the segment [lo, hi] from the cumulative sums ``cums`` (:func:`_cumulative`):
    returns (slope, intercept, SSE, R^2); fewer than two points give slope 0."""
    end = max(hi + 1, lo)
    n = cums[0, end] - cums[0, lo]
    st = cums[1, end] - cums[1, lo]
    sy = cums[2, end] - cums[2, lo]
    stt = cums[3, end] - cums[3, lo]
    sty = cums[4, end] - cums[4, lo]
    syy = cums[5, end] - cums[5, lo]
    mean_t = st / n if n > 0 else 0.0
    mean_y = sy / n if n > 0 else 0.0
    ctt = max(stt - st * mean_t, 0.0)
    cty = sty - st * mean_y
    cyy = max(syy - sy * mean_y, 0.0)
    slope = cty / ctt if ctt > 0 else 0.0
    sse = max(cyy - slope * cty, 0.0)
    den = ctt * cyy
    r2 = min(cty * cty / den if den > 0 else 0.0, 1.0)
    return slope, mean_y - slope * mean_t, sse, r2


@exact()
def _cumulative(y, stop):
    """Cumulative sums of 1, t, y, t^2, t y, y^2 over t = 0..stop with a leading 0, (6, stop + 2):
    the sum over [a, b] is c[b + 1] - c[a] (accumulated in order, as np.cumsum)."""
    cums = np.zeros((6, stop + 2))
    for i in range(stop + 1):
        t, v = float(i), y[i]
        cums[0, i + 1] = cums[0, i] + 1.0
        cums[1, i + 1] = cums[1, i] + t
        cums[2, i + 1] = cums[2, i] + v
        cums[3, i + 1] = cums[3, i] + t * t
        cums[4, i + 1] = cums[4, i] + t * v
        cums[5, i + 1] = cums[5, i] + v * v
    return cums


@exact()
def _best_window(y, first_end, last_end, stop, min_len, penalty, floor, record):
    cums = _cumulative(y, stop)
    n_points = stop + 1.0
    log_n = np.log(n_points)
    n_starts, n_ends = last_end + 1, last_end - first_end + 1
    before = np.empty((2, n_starts))  # transient line on [0, a - 1]: slope, SSE
    for a in range(n_starts):
        slope, _, sse, _ = _line(cums, 0, a - 1)
        before[0, a], before[1, a] = slope, sse
    after = np.empty((3, n_ends))  # saturated line on [b + 1, stop]: slope, intercept, SSE
    for i in range(n_ends):
        slope, intercept, sse, _ = _line(cums, first_end + i + 1, stop)
        after[0, i], after[1, i], after[2, i] = slope, intercept, sse
    best = np.full(8, np.nan)
    best_index = -1
    count = 0
    for a in range(n_starts):
        for i in range(n_ends):
            b = first_end + i
            if b - a + 1 < min_len:
                continue
            slope, intercept, sse, r2 = _line(cums, a, b)
            optional = (1.0 if a > 0 else 0.0) + (1.0 if b < stop else 0.0)
            total = sse + before[1, a] + after[2, i] + floor
            score = n_points * np.log(total / n_points) + penalty * log_n * optional
            has_after = stop - b > 1
            steepest = 1.0 if (slope >= (before[0, a] if a > 1 else -np.inf)
                               and slope >= (after[0, i] if has_after else -np.inf)) else 0.0
            meet = float(b)
            if has_after and slope > after[0, i]:
                meet = (after[1, i] - intercept) / (slope - after[0, i])
            tau = min(max(meet, float(b)), b + 1.0)
            if record.shape[1]:
                record[0, count], record[1, count], record[2, count], record[3, count] = a, b, slope, intercept
                record[4, count], record[5, count], record[6, count], record[7, count] = r2, score, steepest, tau
            # the steepest segment first, then the lowest score, then the longer, then the later window
            if best_index < 0:
                better = True
            elif steepest != best[6]:
                better = steepest > best[6]
            elif score != best[5]:
                better = score < best[5]
            elif b - a != best[1] - best[0]:
                better = b - a > best[1] - best[0]
            else:
                better = b > best[1]
            if better:
                best[0], best[1], best[2], best[3] = a, b, slope, intercept
                best[4], best[5], best[6], best[7] = r2, score, steepest, tau
                best_index = count
            count += 1
    return best_index, best


def best_window(y: np.ndarray, first_end: int, last_end: int, stop: int, min_len: int, penalty: float,
                floor: float, record: bool = False) -> tuple[int, np.ndarray, np.ndarray | None]:
    """Score every window [a, b] (first_end <= b <= last_end, b - a + 1 >= min_len; a outer, b inner)
    of the curve ``y`` on t = 0..stop and pick the best: steepest segment, then lowest score, then
    longest, then latest.

    Returns (index of the best window among the candidates, its columns (WINDOW_COLUMNS order), and
    with ``record`` all candidates' columns (8, n_windows)).
    """
    n_windows = 0
    if record:
        n_windows = sum(max(0, min(last_end, b - min_len + 1) + 1) for b in range(first_end, last_end + 1))
    table = np.empty((8, n_windows))
    index, best = _best_window(np.ascontiguousarray(y, dtype=np.float64), first_end, last_end, stop, min_len,
                               float(penalty), float(floor), table)
    return index, best, table if record else None
