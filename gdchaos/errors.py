"""Errors meant for people: the command line prints them as one line and exits with code 2."""


class GdchaosError(ValueError):
    """Bad input from a user (config, data, files): the message names the field and allowed values."""


class DataError(GdchaosError):
    """A dataset is missing, truncated or corrupted; the message says where and what to run."""
