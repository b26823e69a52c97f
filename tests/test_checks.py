"""The one set of validation helpers (gdchaos.checks): one message format, ``FIELD: must be ...; got VALUE``."""
import numpy as np
import pytest

from gdchaos.checks import (check_bool, check_choice, check_int, check_keys, check_number, check_positive,
                            check_text, fail, is_int, is_number)
from gdchaos.errors import GdchaosError


def message(call, *args, **kwargs) -> str:
    with pytest.raises(GdchaosError) as error:
        call(*args, **kwargs)
    text = str(error.value)
    assert "\n" not in text
    return text


def test_types():
    assert is_int(3) and is_int(np.int32(3)) and not is_int(True) and not is_int(3.0)
    assert is_number(3) and is_number(np.float32(0.5)) and not is_number(False) and not is_number("1")


def test_integers():
    assert check_int("ics", 5, 1) == 5 and check_int("ics", np.int64(5), 1, 5) == 5
    assert message(check_int, "ics", 0, 1) == "ics: must be an integer >= 1; got 0"
    assert message(check_int, "size", 16, 2, 15) == "size: must be an integer in [2, 15]; got 16"
    assert message(check_int, "ics", 2.0, 1) == "ics: must be an integer >= 1; got 2.0"
    assert message(check_int, "ics", True) == "ics: must be an integer; got True"


def test_numbers():
    assert check_number("l2", 0, 0) == 0.0 and check_positive("eps", 1e-8) == 1e-8
    assert message(check_positive, "eps", 0.0) == "eps: must be a finite number > 0; got 0.0"
    assert message(check_number, "model.l2", -1.0, 0) == "model.l2: must be a finite number >= 0; got -1.0"
    assert message(check_number, "f", 1.0, 0, 1, open_low=True, open_high=True) == (
        "f: must be a finite number in (0, 1); got 1.0")
    assert message(check_number, "x", float("nan")) == "x: must be a finite number; got nan"
    assert message(check_number, "x", "1") == "x: must be a finite number; got '1'"


def test_choices_keys_and_custom_requirements():
    assert check_choice("dtype", "float64", ("float64", "float32")) == "float64"
    assert message(check_choice, "dtype", "float16", ("float64", "float32")) == (
        "dtype: must be one of float64, float32; got 'float16'")
    check_keys("model", ["kind"], ("kind", "hidden"))
    assert message(check_keys, "model", ["kind", "depth"], ("kind", "hidden")) == (
        "model: unknown key 'depth'; allowed: kind, hidden")
    assert message(fail, "model.sizes", "integers >= 1", [4, 0]) == "model.sizes: must be integers >= 1; got [4, 0]"


def test_booleans_and_text():
    assert check_bool("flag", True) is True and check_bool("flag", np.bool_(False)) is False
    assert message(check_bool, "flag", "no") == "flag: must be true or false; got 'no'"
    assert message(check_bool, "flag", 1) == "flag: must be true or false; got 1"
    assert check_text("output", "a.h5") == "a.h5" and check_text("data_dir", None, optional=True) is None
    assert message(check_text, "output", None) == "output: must be a string; got None"
    assert message(check_text, "data_dir", 5, optional=True) == "data_dir: must be a string or absent; got 5"


def test_integers_given_for_float_fields_become_floats():
    from gdchaos.config import from_dict

    config = from_dict({"target": 1, "eps": 1, "ics": 3, "model": {"l2": 1, "hidden": [3]},
                        "analysis": {"r2_min": 1, "n_boot": 10}})
    for value in (config.target, config.eps, config.model.l2, config.fit_params().r2_min):
        assert type(value) is float and value == 1.0  # one argument type for the kernels: no new compilation
    assert type(config.ics) is int and type(config.fit_params().n_boot) is int
    assert from_dict({"perturb_biases": True}).perturb_biases is True  # booleans are not numbers here
