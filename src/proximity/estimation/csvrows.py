"""CSV text read as the recordings and calibration readers need it: rows, or where the text breaks.

The text is read with ``newline=""`` (as the csv module requires), so a stray carriage return ends a
row instead of raising ``_csv.Error``; what the csv module still refuses (a field over
``csv.field_size_limit()``) comes back as :class:`BrokenCsv` with the row and the column it broke in,
for the reader to raise as its own typed error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

__all__ = ["BrokenCsv", "cell_name", "csv_rows"]


class BrokenCsv(Exception):  # noqa: N818 - internal, always turned into a ProximityError by the reader
    """Row ``row`` (1 = the header) cannot be read; it broke in cell ``cell`` (0-based)."""

    def __init__(self, row: int, cell: int, reason: str) -> None:
        super().__init__(reason)
        self.row, self.cell, self.reason = row, cell, reason

    def __reduce__(self) -> tuple[object, ...]:
        # rebuilt from its fields, so it survives pickling like every error of the package
        return (type(self), (self.row, self.cell, self.reason))


def csv_rows(text: str) -> Iterator[list[str]]:
    """The rows of ``text`` (a blank line is an empty row); raises :class:`BrokenCsv`."""
    reader = csv.reader(io.StringIO(text, newline=""))
    row, line = 0, 0
    try:
        for row, cells in enumerate(reader, start=1):  # noqa: B007 (row is read after the loop)
            line = reader.line_num
            yield cells
    except csv.Error as error:
        lines = io.StringIO(text, newline="").readlines()[line : reader.line_num]
        raise BrokenCsv(row + 1, _broken_cell("".join(lines)), str(error)) from None


def cell_name(header: list[str], cell: int) -> str:
    """How errors name cell ``cell`` (0-based) of a row: its header name, else its position."""
    if cell < len(header):
        return header[cell][:40] or f"#{cell + 1}"
    return f"#{cell + 1} (beyond the header)" if header else f"#{cell + 1}"


def _broken_cell(record: str) -> int:
    """The cell of ``record`` where the first over-long field starts (the last cell if none is)."""
    limit, cell, length, quoted = csv.field_size_limit(), 0, 0, False
    for char in record:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            cell, length = cell + 1, 0
            continue
        length += 1
        if length > limit:
            break
    return cell
