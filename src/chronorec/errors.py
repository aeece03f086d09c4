"""One error type for every problem a user can fix, printed by the CLI as a single line.

`ChronorecError("column 'ts' has 3 NaN values", file="ratings.csv", column="ts", row=17)` renders
as ``ratings.csv: column 'ts', row 17: column 'ts' has 3 NaN values``. Rows are 1-based data rows
(the header is not counted) so a user can find them in an editor.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any


class ChronorecError(Exception):
    """A user-facing error: bad input, bad option, missing data. The CLI prints `str(err)` and exits 2."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        column: str | None = None,
        row: int | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.column = column
        self.row = row
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        loc = []
        if self.column is not None:
            loc.append(f"column '{self.column}'")
        if self.row is not None:
            loc.append(f"row {self.row}")
        if loc:
            where.append(", ".join(loc))
        prefix = ": ".join(where)
        text = " ".join(self.message.split())  # always one line
        return f"{prefix}: {text}" if prefix else text


def first_validation_error(err: Any) -> tuple[str, str, str]:
    """``(location, message, type)`` of a pydantic ``ValidationError``'s first error, for one-line
    messages: the location dotted (``""`` for a check across fields, i.e. a model validator) and the
    message without pydantic's ``"Value error, "`` prefix."""
    first = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"])
    return loc, str(first["msg"]).removeprefix("Value error, "), str(first["type"])


class ChronorecWarning(UserWarning):
    """Something was repaired (duplicates dropped, rows with unknown items removed, ...), with counts."""


def warn(message: str) -> None:
    warnings.warn(" ".join(message.split()), ChronorecWarning, stacklevel=2)
