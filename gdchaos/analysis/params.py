"""Every tunable of the analysis in one validated dataclass (see docs/analysis.md for the meaning of each)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from gdchaos.checks import check_choice, check_int, check_keys, check_number, floats_where_declared

ESTIMATORS: tuple[str, ...] = ("eq3", "slope")
MAX_BOOTSTRAP = 100_000  # resamples; 1,000 already give the percentile intervals to about 1%
BOOTSTRAP_BYTES = 26  # per resample and initial condition: the drawn index, the gathered values and masks


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
        check_int("min_start", self.min_start, 1)
        check_number("sat_frac", self.sat_frac, 0.0, 1.0, open_low=True, open_high=True)
        check_int("sat_hold", self.sat_hold, 1)
        check_int("slope_halfwidth", self.slope_halfwidth, 1)
        check_int("min_len", self.min_len, 3)
        check_number("segment_penalty", self.segment_penalty, 0.0)
        check_choice("estimator", self.estimator, ESTIMATORS)
        check_number("r2_min", self.r2_min, 0.0, 1.0)
        check_number("lambda_min", self.lambda_min)
        check_int("n_boot", self.n_boot, 0, MAX_BOOTSTRAP)
        check_number("ci_level", self.ci_level, 0.0, 1.0, open_low=True, open_high=True)
        check_int("seed", self.seed, 0)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> FitParams:
        """Build from a config table; unknown keys are an error that lists the known ones."""
        check_keys("analysis", sorted(values), [f.name for f in fields(cls)])
        return cls(**floats_where_declared(cls, dict(values)))

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (for provenance in result files)."""
        return asdict(self)
