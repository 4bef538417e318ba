"""CSV reading with line-numbered, column-named errors; callers import all rows or none."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from clearline.kit.errors import ValidationFailedError

T = TypeVar("T")


@dataclass
class RowError:
    line: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": [f"line {self.line}", self.column], "msg": self.message}

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.message}"


class RowInvalid(ValueError):
    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


@dataclass
class ParsedCsv(Generic[T]):
    rows: list[tuple[int, T]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def read_rows(
    text: str | bytes, *, required: list[str], optional: list[str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line_number, row)``; the header is line 1. A missing column fails the whole file."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ValidationFailedError("file is not UTF-8", details=[{"loc": ["file"], "msg": str(exc)}]) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [column for column in required if column not in header]
    if missing:
        raise ValidationFailedError(
            f"header is missing column(s): {', '.join(missing)}",
            details=[{"loc": ["line 1", column], "msg": "missing column"} for column in missing],
        )
    reader.fieldnames = header
    for row in reader:
        line = reader.line_num
        if None in row:
            yield line, {"__extra__": "too many fields"}
            continue
        yield line, {key: (value or "").strip() for key, value in row.items()}


def parse(
    text: str | bytes,
    *,
    required: list[str],
    optional: list[str] | None = None,
    convert: Callable[[dict[str, str]], T],
) -> ParsedCsv[T]:
    """Convert every row, collecting every error (not just the first) with its line and column."""
    result: ParsedCsv[T] = ParsedCsv()
    for line, row in read_rows(text, required=required, optional=optional or []):
        if "__extra__" in row:
            result.errors.append(RowError(line, "row", "more fields than the header"))
            continue
        try:
            result.rows.append((line, convert(row)))
        except RowInvalid as exc:
            result.errors.append(RowError(line, exc.column, exc.message))
    if not result.rows and not result.errors:
        result.errors.append(RowError(2, "file", "no data rows"))
    return result


def raise_if_errors(parsed: ParsedCsv[Any], what: str) -> None:
    if parsed.errors:
        raise ValidationFailedError(
            f"{what}: {len(parsed.errors)} bad row(s), nothing imported; first: {parsed.errors[0]}",
            details=[error.as_dict() for error in parsed.errors],
        )
