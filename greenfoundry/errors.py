"""Domain errors. The library raises these; the CLI turns them into one `error: …` line."""


class GreenfoundryError(Exception):
    """Base class for errors a user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(GreenfoundryError):
    """An invalid configuration file. The message names the key, the value and what is allowed."""


class StackError(GreenfoundryError):
    """The local Mosquitto/InfluxDB stack could not be started, stopped or reached."""


class StoreError(GreenfoundryError):
    """InfluxDB refused or could not serve a request."""


class NotCoveredError(GreenfoundryError):
    """A value or furnace that no row of the standard covers. Exit status 2, by the CLI contract."""

    exit_code = 2
