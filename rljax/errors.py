"""Errors that the CLI reports as one line with exit code 2 instead of a traceback."""


class ConfigError(ValueError):
    """A bad configuration value, key, experiment name or path; the message names it."""


class DivergenceError(RuntimeError):
    """A member's loss, parameters or returns became NaN or infinite; the message names the
    member, the update and the quantity (the CLI prints it as one line, exit code 3)."""
