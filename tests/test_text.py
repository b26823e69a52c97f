"""Numbers and durations as text (gdchaos.text): one formatter for the command line, logs and the TUI."""
import math

from gdchaos.text import duration, number


def test_number():
    assert number(0.12345) == "0.123" and number(0.0005, 4) == "0.0005" and number(2.5e-5) == "2.5e-05"
    assert number(1234.0) == "1234" and number(415.0, 4) == "415" and number(100.0) == "100"
    assert number(None) == number(math.nan) == number(math.inf) == "-"


def test_duration():
    assert duration(None) == duration(math.nan) == "--:--"
    assert duration(0) == "0:00" and duration(59.6) == "1:00" and duration(61) == "1:01"
    assert duration(3600) == "1:00:00" and duration(2 * 86400 + 5) == "48:00:05"
    assert duration(15 * 86400) == "15.0 days"
