"""The one exception of config handling (its own module so that fields and parser both import it)."""


class ConfigError(ValueError):
    """A bad configuration value; the message names the key path and what would be valid."""
