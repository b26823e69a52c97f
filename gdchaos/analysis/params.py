"""Every tunable of the analysis in one validated dataclass (see docs/analysis.md for the meaning of each)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from gdchaos.errors import GdchaosError

ESTIMATORS: tuple[str, ...] = ("eq3", "slope")


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise GdchaosError(f"{name} must be an integer >= {low} (got {value!r})")


def _check_float(name: str, value: Any, low: float, high: float, *, open_low: bool, open_high: bool) -> None:
    bad_type = isinstance(value, bool) or not isinstance(value, (int, float))
    too_low = not bad_type and (value <= low if open_low else value < low)
    too_high = not bad_type and (value >= high if open_high else value > high)
    if bad_type or value != value or too_low or too_high:
        interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
        raise GdchaosError(f"{name} must be a number in {interval} (got {value!r})")


@dataclass(frozen=True)
class FitParams:
    """Parameters of the local-exponent fit (saturation cut, window search) and of the per-eta summary.

    Fit: ``min_start`` earliest epoch accepted as saturation and as end of the fit window;
    ``sat_frac``/``sat_hold`` saturation = ln D slope below ``sat_frac`` x its maximum for ``sat_hold``
    epochs; ``slope_halfwidth`` half-width h of the centred difference that smooths that slope;
    ``min_len`` shortest fit window (epochs); ``segment_penalty`` BIC-like cost (x ln N) of each optional
    segment (transient, saturated phase) of the piecewise-linear model of ln D; ``estimator`` which
    estimate is ``lyapunov`` ("eq3": Eq. 3 at the fitted saturation time tau, "slope": window slope).
    Summary: an initial condition is chaotic when R^2 > ``r2_min`` and Lambda > ``lambda_min``;
    ``n_boot`` bootstrap resamples (0: no intervals) for ``ci_level`` intervals, drawn with ``seed``.
    """

    min_start: int = 10
    sat_frac: float = 0.15
    sat_hold: int = 8
    slope_halfwidth: int = 2
    min_len: int = 5
    segment_penalty: float = 5.0
    estimator: str = "eq3"
    r2_min: float = 0.9
    lambda_min: float = 0.05
    n_boot: int = 1000
    ci_level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        _check_int("min_start", self.min_start, 1)
        _check_float("sat_frac", self.sat_frac, 0.0, 1.0, open_low=True, open_high=True)
        _check_int("sat_hold", self.sat_hold, 1)
        _check_int("slope_halfwidth", self.slope_halfwidth, 1)
        _check_int("min_len", self.min_len, 3)
        _check_float("segment_penalty", self.segment_penalty, 0.0, float("inf"), open_low=False, open_high=True)
        if self.estimator not in ESTIMATORS:
            raise GdchaosError(f"estimator must be one of {', '.join(ESTIMATORS)} (got {self.estimator!r})")
        _check_float("r2_min", self.r2_min, 0.0, 1.0, open_low=False, open_high=False)
        _check_float("lambda_min", self.lambda_min, float("-inf"), float("inf"), open_low=True, open_high=True)
        _check_int("n_boot", self.n_boot, 0)
        _check_float("ci_level", self.ci_level, 0.0, 1.0, open_low=True, open_high=True)
        _check_int("seed", self.seed, 0)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FitParams:
        """Build from a config table; unknown keys are an error that lists the known ones."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise GdchaosError(f"unknown analysis parameter {unknown[0]!r} (known: {', '.join(known)})")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for provenance in result files)."""
        return asdict(self)
