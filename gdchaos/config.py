"""The sweep configuration: one schema, loaded from TOML and overridden by command-line flags.

Every field is validated here; an invalid value raises :class:`~gdchaos.errors.GdchaosError`
with a one-line message naming the field and the allowed values.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from gdchaos import data
from gdchaos.analysis.params import FitParams
from gdchaos.backend.activations import ACTIVATIONS
from gdchaos.checks import (check_bool, check_choice, check_int, check_keys, check_number, check_positive, check_text,
                            fail, is_int)
from gdchaos.errors import GdchaosError
from gdchaos.grid import parse_etas, parse_indices
from gdchaos.nn.base import DTYPES

MODEL_KINDS = ("mlp", "cnn")
# smallest eps (relative to init_std) a dtype resolves: a perturbation below ~100 ulp of the
# weights would leave most of them unchanged (docs/protocol.md, precision)
EPS_RESOLUTION_ULPS = 100
SEED_MAX = 2**63 - 1  # seeds are stored as a signed 64-bit attribute
STORED_INT_MAX = 2**31 - 1  # counts and epochs are stored as int32 (epochs up to one less: T + 1 columns)
# fields stored only when set: files made without them keep the config (and identity) of older versions
OMITTED_AT_DEFAULT = ("tangent", "tangent_k", "tangent_qr_every")


@dataclass(frozen=True)
class ModelConfig:
    """The network: an MLP (``hidden`` widths) or a CNN (``layers`` specs), activation, init, L2."""

    kind: str = "mlp"
    hidden: tuple[int, ...] = (64,)
    activation: str = "tanh"
    init_std: float = 1.0
    l2: float = 0.0
    layers: tuple[dict, ...] = ()

    def validate(self) -> None:
        """Raise GdchaosError naming the first invalid field."""
        check_choice("model.kind", self.kind, MODEL_KINDS)
        if self.kind == "cnn" and not self.layers:
            raise GdchaosError("model.layers: a CNN needs a list of layer tables (see `gdchaos config show mnist-cnn`)")
        if self.kind == "mlp" and (not self.hidden or not all(is_int(h) and 1 <= h <= STORED_INT_MAX
                                                              for h in self.hidden)):
            fail("model.hidden", f"one or more layer widths, integers in [1, {STORED_INT_MAX:,}] (e.g. 64 or 32,32)",
                 list(self.hidden))
        check_choice("model.activation", self.activation, ACTIVATIONS)
        check_positive("model.init_std", self.init_std)
        check_number("model.l2", self.l2, 0)


@dataclass(frozen=True)
class SweepConfig:
    """Everything that defines a sweep; stored as JSON in the results file."""

    dataset: str = "iris"
    data_dir: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    etas: tuple[float, ...] = ()
    ics: int = 50
    replicas: int = 5
    eps: float = 1e-8
    perturb_biases: bool = False
    epochs: int = 201
    target: float = 0.9
    tau_epochs: int = 1000
    seed: int = 0
    dtype: str = "float64"
    output: str = ""
    memory_budget_mb: int = 1024
    ics_per_unit: int = 0
    etas_per_unit: int = 0
    sharpness_every: int = 0
    sharpness_subset: int = 0
    sharpness_tol: float = 1e-4
    sharpness_max_iter: int = 100
    save_trajectories: bool = False
    trajectory_ics: tuple[int, ...] = ()
    trajectory_every: int = 1
    trajectory_dtype: str = "float64"
    tangent: bool = False
    tangent_k: int = 0
    tangent_qr_every: int = 1
    analysis: dict = field(default_factory=dict)

    def validate(self) -> SweepConfig:
        """Check every field; return self so calls can be chained."""
        check_choice("dataset", self.dataset, data.names())
        self.model.validate()
        if not self.etas:
            raise GdchaosError("etas: give at least one learning rate (a list, START:STOP:N or log:START:STOP:N)")
        for eta in self.etas:
            check_positive("etas", eta)
        check_int("ics", self.ics, 1, STORED_INT_MAX)
        check_int("replicas", self.replicas, 1, STORED_INT_MAX - 1)
        check_bool("perturb_biases", self.perturb_biases)
        check_bool("save_trajectories", self.save_trajectories)
        check_text("output", self.output)
        check_text("data_dir", self.data_dir, optional=True)
        check_positive("eps", self.eps)
        check_choice("dtype", self.dtype, DTYPES)
        resolution = EPS_RESOLUTION_ULPS * float(np.finfo(self.dtype).eps) * self.model.init_std
        if self.eps < resolution:
            raise GdchaosError(
                f"eps: {self.eps:g} is too small for {self.dtype} weights of scale {self.model.init_std:g}; "
                f"allowed: eps >= {resolution:.1e} (use float64 or a larger eps)")
        check_int("epochs", self.epochs, 2, STORED_INT_MAX - 1)
        check_number("target", self.target, 0, 1, open_low=True)
        check_int("tau_epochs", self.tau_epochs, self.epochs, STORED_INT_MAX - 1)
        check_int("seed", self.seed, 0, SEED_MAX)
        check_int("memory_budget_mb", self.memory_budget_mb, 16)
        check_int("ics_per_unit", self.ics_per_unit, 0)
        check_int("etas_per_unit", self.etas_per_unit, 0)
        check_int("sharpness_every", self.sharpness_every, 0)
        check_int("sharpness_subset", self.sharpness_subset, 0)
        check_positive("sharpness_tol", self.sharpness_tol)
        check_int("sharpness_max_iter", self.sharpness_max_iter, 1)
        check_int("trajectory_every", self.trajectory_every, 1)
        check_choice("trajectory_dtype", self.trajectory_dtype, DTYPES)
        check_bool("tangent", self.tangent)
        check_int("tangent_k", self.tangent_k, 0)
        check_int("tangent_qr_every", self.tangent_qr_every, 1)
        for ic in self.trajectory_ics:
            check_int("trajectory_ics", ic, 0, self.ics - 1)
        if len(set(self.trajectory_ics)) != len(self.trajectory_ics):
            raise GdchaosError("trajectory_ics: each initial condition at most once")
        self.fit_params()
        return self

    def fit_params(self) -> FitParams:
        """The analysis parameters (``[analysis]`` table) as a validated FitParams."""
        try:
            return FitParams.from_mapping(self.analysis)
        except GdchaosError as exc:
            text = str(exc)  # a bad value names its parameter, an unknown key the table
            raise GdchaosError(text if text.startswith("analysis") else f"analysis.{text}") from None

    # ------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (lists, no tuples) in field order; :data:`OMITTED_AT_DEFAULT` fields only when set."""
        result = self._all_fields()
        for name in OMITTED_AT_DEFAULT:
            if result[name] == _DEFAULTS[name]:
                del result[name]
        return result

    def _all_fields(self) -> dict[str, Any]:
        result = asdict(self)
        result["model"]["hidden"] = list(self.model.hidden)
        result["model"]["layers"] = [dict(layer) for layer in self.model.layers]
        result["etas"] = list(self.etas)
        result["trajectory_ics"] = list(self.trajectory_ics)
        return result

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) stored in results files."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def memory_budget_bytes(self) -> int:
        """``memory_budget_mb`` in bytes."""
        return self.memory_budget_mb * 2**20

    def sharpness_epochs(self) -> list[int]:
        """Epochs 0, K, 2K, ... <= T at which sharpness is recorded (empty when off)."""
        return list(range(0, self.epochs + 1, self.sharpness_every)) if self.sharpness_every else []

    def trajectory_ic_list(self) -> list[int]:
        """Initial conditions whose trajectories are stored (sorted; all when none are named)."""
        if not self.save_trajectories:
            return []
        return sorted(self.trajectory_ics) if self.trajectory_ics else list(range(self.ics))

    def trajectory_epochs(self) -> list[int]:
        """Epochs 0, k, 2k, ... <= T whose parameters are stored (empty when off)."""
        return list(range(0, self.epochs + 1, self.trajectory_every)) if self.save_trajectories else []

    def trajectory_bytes(self, n_params: int) -> int:
        """Uncompressed size of the stored trajectories: n_eta x n_ics x (M+1) x n_epochs x P x itemsize."""
        return (len(self.etas) * len(self.trajectory_ic_list()) * (self.replicas + 1)
                * len(self.trajectory_epochs()) * n_params * np.dtype(self.trajectory_dtype).itemsize)

    def identity(self) -> str:
        """JSON of the fields that define the results (not where they go or how they are analysed)."""
        values = self.to_dict()
        for key in ("output", "data_dir", "analysis"):
            values.pop(key)
        return json.dumps(values, sort_keys=True)

    def to_toml(self) -> str:
        """A complete TOML document that :func:`load_toml` reads back to the same config."""
        values = self._all_fields()
        model, analysis = values.pop("model"), values.pop("analysis")
        lines = [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
        lines += ["", "[model]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in model.items()
                  if not (key == "layers" and self.model.kind == "mlp")]
        lines += ["", "[analysis]"]
        defaults = FitParams().to_dict()
        defaults.update(analysis)
        lines += [f"{key} = {_toml_value(value)}" for key, value in defaults.items()]
        return "\n".join(lines) + "\n"


_DEFAULTS = asdict(SweepConfig())


def from_dict(values: dict[str, Any], base: SweepConfig | None = None) -> SweepConfig:
    """Apply a (possibly partial) nested dict of values onto ``base`` (defaults when None)."""
    base = base or SweepConfig()
    check_keys("config", sorted(values), sorted(f.name for f in fields(SweepConfig)))
    values = dict(values)
    model_values = values.pop("model", None)
    model = base.model
    if model_values is not None:
        if not isinstance(model_values, dict):
            fail("model", "a table of model settings ([model])", model_values)
        check_keys("model", sorted(model_values), sorted(f.name for f in fields(ModelConfig)))
        model_values = dict(model_values)
        if "hidden" in model_values:
            model_values["hidden"] = parse_hidden(model_values["hidden"])
        if "layers" in model_values:
            layers = model_values["layers"]
            if not isinstance(layers, (list, tuple)) or not all(isinstance(layer, dict) for layer in layers):
                fail("model.layers", "a list of layer tables ([[model.layers]])", layers)
            model_values["layers"] = tuple(dict(layer) for layer in layers)
        model = replace(model, **model_values)
    if "etas" in values:
        values["etas"] = parse_etas(values["etas"])
    if "trajectory_ics" in values:
        values["trajectory_ics"] = parse_indices(values["trajectory_ics"], "trajectory_ics")
    if "analysis" in values:
        values["analysis"] = {**base.analysis, **dict(values["analysis"])}
    return replace(base, model=model, **values)


def load_toml(path: str | Path, base: SweepConfig | None = None) -> SweepConfig:
    """Read a TOML config file onto ``base``; unreadable or invalid TOML is a one-line error."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GdchaosError(f"config: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise GdchaosError(f"config: {path} is not a text file (TOML is UTF-8)") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GdchaosError(f"config: {path} is not valid TOML: {exc}") from None
    if not values:
        raise GdchaosError(f"config: {path} sets nothing; start from `gdchaos config show PRESET`")
    values.pop("cluster", None)  # where to run, not what: read by `gdchaos run --cluster`
    return from_dict(values, base)


def parse_hidden(value: Any) -> tuple[int, ...]:
    """Hidden widths from ``64``, ``"32,32"`` or a list."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")] if value.strip() else []
        items = [int(item) if item.isdigit() else item for item in items]  # "10,,10", "1.5" stay text
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    if not all(is_int(item) for item in items):  # no floats, booleans or empty items
        raise GdchaosError(f"model.hidden: integers >= 1 such as 64 or 32,32; got {value!r}")
    widths = tuple(int(item) for item in items)
    if widths and min(widths) < 1:
        raise GdchaosError(f"model.hidden: integers >= 1 such as 64 or 32,32; got {value!r}")
    return widths  # empty for a CNN; ModelConfig.validate requires widths for an MLP


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + " }"
    return str(value)
