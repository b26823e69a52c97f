"""The grammars of gdchaos.grid (learning rates, initial-condition indices) and the places that read them:
configs, run, cubic, plot."""
import numpy as np
import pytest

from gdchaos.config import from_dict
from gdchaos.errors import GdchaosError
from gdchaos.grid import AUTO_COUNT, parse_auto, parse_etas, parse_indices


@pytest.mark.parametrize("value, expected", [
    ("0.5:2:4", [0.5, 1.0, 1.5, 2.0]),
    ("1.1, 2", [1.1, 2.0]),
    ("7.5", [7.5]),
    (7.5, [7.5]),
    ([1, 2.5], [1.0, 2.5]),
    (["1", "3"], [1.0, 3.0]),
    ("log:1e-3:10:5", [1e-3, 1e-2, 1e-1, 1.0, 10.0]),
    ("LOG:0.1:0.1:1", [0.1]),
])
def test_grammar(value, expected):
    etas = parse_etas(value)
    assert isinstance(etas, tuple) and all(type(eta) is float for eta in etas)
    np.testing.assert_allclose(etas, expected, rtol=1e-15)


def test_ranges_are_numpy_linspace_and_geomspace_bit_for_bit():
    assert parse_etas("0.01:2.0:2000") == tuple(np.linspace(0.01, 2.0, 2000).tolist())
    assert parse_etas("log:0.0005:20:16") == tuple(np.geomspace(0.0005, 20, 16).tolist())


@pytest.mark.parametrize("bad", ["0.5:2:0", "0.5:2:x", "x:2:3", "0:2:3", "1,-2", "1:2", "inf", "nan", "",
                                 "lin:1:2:3", "log:0:1:3", "log:-1:1:3", [], [True], [0.0], None, {"a": 1}])
def test_bad_grids_name_the_field_in_one_line(bad):
    for field in ("etas", "--etas"):
        with pytest.raises(GdchaosError) as error:
            parse_etas(bad, field)
        assert str(error.value).startswith(f"{field}: ") and "\n" not in str(error.value)


def test_the_config_and_the_commands_share_it():
    assert from_dict({"etas": "log:0.1:10:3"}).etas == parse_etas("log:0.1:10:3")
    with pytest.raises(GdchaosError, match="^etas: "):
        from_dict({"etas": "1,x"})


@pytest.mark.parametrize("value, count, expected", [
    ("0,3,7", None, (0, 3, 7)), ([1, 2], None, (1, 2)), (4, None, (4,)), ("all", None, ()), ("", None, ()),
    ("all", 3, (0, 1, 2)), ("1:3,5", None, (1, 2, 5)), (":2", None, (0, 1)), ("2:", 4, (2, 3)), ("3:1", 4, ()),
])
def test_index_grammar(value, count, expected):
    assert parse_indices(value, "ics", count) == expected


@pytest.mark.parametrize("value, count", [("x", None), ("0.5", None), ([0.5], None), ([True], None), ("2:", None),
                                          ("-1", None), ("5", 3), ("1:9", 3), ("1:x", 3)])
def test_bad_indices_name_the_field(value, count):
    with pytest.raises(GdchaosError) as error:
        parse_indices(value, "trajectory_ics", count)
    assert str(error.value).startswith("trajectory_ics: ") and "\n" not in str(error.value)


def test_trajectory_ics_and_plot_ics_share_it():
    assert from_dict({"trajectory_ics": "0:3"}).trajectory_ics == (0, 1, 2)


@pytest.mark.parametrize("value, expected", [("auto", AUTO_COUNT), ("auto:5", 5), (" AUTO:2 ", 2), ("1,2", None),
                                             ("log:1:2:3", None), (1.0, None), ([1, 2], None)])
def test_auto_grammar(value, expected):
    assert parse_auto(value, "--etas") == expected


@pytest.mark.parametrize("bad", ["auto:", "auto:x", "auto:1", "auto:2.5", "automatic", "auto:0"])
def test_bad_auto_names_the_field(bad):
    with pytest.raises(GdchaosError) as error:
        parse_auto(bad, "--etas")
    assert str(error.value).startswith("--etas: ") and "\n" not in str(error.value)


def test_auto_is_not_a_grid_in_a_config():
    with pytest.raises(GdchaosError, match="^etas: auto.* is resolved by `gdchaos run --etas auto"):
        from_dict({"etas": "auto:8"})
