"""Exceptions raised for problems the user can fix (bad data, bad config, missing files).

Every message is one line that names the file or value at fault and what to do about it, so
Snakemake's log shows the cause without a traceback hunt.
"""


class VocflowError(Exception):
    """Base class for errors the user can act on."""


class DataError(VocflowError):
    """The input data (a file, an array, a label) is missing or malformed."""


class ConfigError(VocflowError):
    """The configuration names something that does not exist or is inconsistent."""
