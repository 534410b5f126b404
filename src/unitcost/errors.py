"""One root error for unitcost; each subclass also inherits the matching built-in.

Callers can catch ``UnitcostError`` for anything unitcost raises, or the built-in
(``ValueError``, ``FileNotFoundError``, ...) they would catch anyway.
"""

from __future__ import annotations


class UnitcostError(Exception):
    """Root of every error unitcost raises on purpose."""


class ConfigError(ValueError, UnitcostError):
    """The configuration file or a setting is invalid."""


class IngestError(ValueError, UnitcostError):
    """An input file cannot be read as the format it claims.

    Carries the file and, where known, the record and field, so the message alone
    tells the user where to look.
    """

    def __init__(
        self, reason: str, *, path: str | None = None, record: int | None = None, field: str | None = None
    ) -> None:
        self.reason = reason
        self.path = path
        self.record = record
        self.field = field
        where = []
        if path is not None:
            where.append(str(path))
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{': '.join([', '.join(where), reason]) if where else reason}")


class InputFileNotFound(FileNotFoundError, UnitcostError):
    """An input file named by the user does not exist."""


class PeriodError(ValueError, UnitcostError):
    """A --from/--to value or period cannot be understood."""


class UnknownDimensionError(ValueError, UnitcostError):
    """A dimension name is not one unitcost can group by."""


class CurrencyError(ValueError, UnitcostError):
    """Amounts in different currencies would have to be added together."""


class InvalidOptionError(ValueError, UnitcostError):
    """An option has a value outside the ones it accepts."""
