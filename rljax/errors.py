"""Errors that the CLI reports as one line with exit code 2 instead of a traceback."""


class ConfigError(ValueError):
    """A bad configuration value, key, experiment name or path; the message names it."""
