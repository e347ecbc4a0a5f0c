"""Domain errors, in one hierarchy. The library raises these; the CLI turns them into one
`error: …` line and exits with the class's `exit_code`.

    GreenfoundryError            anything a user can act on (never raised itself)
    ├── ConfigError              the plant config or the standard's file is invalid: the message
    │                            names the file, the key, the value and what is allowed
    ├── InputError               an input a command works on is refused (evidence, indicators,
    │   │                        a value given on the command line, a value no plant can have)
    │   ├── ContextError         a row of the standard needs a plant fact that was not given
    │   └── NotCoveredError      no row of the standard covers the plant (exit 2)
    ├── StoreError               InfluxDB refused or could not serve a request
    ├── BrokerError              the MQTT broker refused or could not be reached
    ├── StackError               the local Mosquitto/InfluxDB servers could not be started,
    │                            stopped or reached
    ├── BusyError                another process holds what this one needs (a spool, a lock)
    └── UsageError               a command was called with options that do not fit (exit 2)

Programming errors (a bug, not a user's input) stay Python's own exceptions and show a traceback.
"""


class GreenfoundryError(Exception):
    """Base class for errors a user can act on. `exit_code` is what the CLI exits with."""

    exit_code = 1


class ConfigError(GreenfoundryError):
    """An invalid configuration file. The message names the key, the value and what is allowed."""


class InputError(GreenfoundryError):
    """An input a command works on is refused; the message names the file or option, the key,
    the value and what is allowed."""


class ContextError(InputError):
    """A row's tiers depend on a plant fact (product, DN, furnace, …) that was not given."""


class NotCoveredError(InputError):
    """A value or furnace that no row of the standard covers. Exit status 2, by the CLI contract."""

    exit_code = 2


class StoreError(GreenfoundryError):
    """InfluxDB refused or could not serve a request."""


class BrokerError(GreenfoundryError):
    """The MQTT broker refused a connection, a subscription or a publish, or could not be reached."""


class StackError(GreenfoundryError):
    """The local Mosquitto/InfluxDB stack could not be started, stopped or reached."""


class BusyError(GreenfoundryError):
    """Another process holds what this one needs (a spool directory, a service lock)."""


class UsageError(GreenfoundryError):
    """Options that do not fit together or a value out of range on the command line."""

    exit_code = 2
