"""Writing many new rows of one model at once, for batch processing.

On PostgreSQL the ids come from the table's sequence in one statement and the rows go in by ``COPY``: no
multi-row INSERT text to build, bind and parse (with a thousand rows a batch, the driver's parsing of those
statements cost more than the database's work). Elsewhere the ORM's batched flush does it. Either way the
objects end up with their ids; on PostgreSQL they are not added to the session (nothing later in the batch
loads or changes them), so they cost the session nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, inspect, text
from sqlalchemy.orm import Session


def _default(default: Any) -> Any:
    """The model's Python-side default, as a flush would apply it."""
    if default.is_scalar:
        return default.arg
    if default.is_callable:
        return default.arg(None)
    raise NotImplementedError(f"a SQL default ({default.arg}) cannot be applied before COPY")


def insert_all(session: Session, objects: list[Any]) -> None:
    """Insert new ORM objects of one model and set their ids, in the order given."""
    if not objects:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.add_all(objects)
        session.flush()
        return
    from psycopg.types.json import Json

    mapper = inspect(type(objects[0]))
    table = mapper.local_table
    ids = session.scalars(
        text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
        {"table": table.name, "n": len(objects)},
    ).all()
    columns = list(table.columns)
    keys = [mapper.get_property_by_column(column).key for column in columns]
    defaults = [column.default for column in columns]
    is_json = [isinstance(column.type, JSON) for column in columns]
    rows = []
    for obj, ident in zip(objects, sorted(ids), strict=True):
        obj.id = ident
        row = []
        for key, default, json_value in zip(keys, defaults, is_json, strict=True):
            value = getattr(obj, key)
            if value is None and default is not None:
                value = _default(default)
                setattr(obj, key, value)
            row.append(Json(value) if json_value and value is not None else value)
        rows.append(row)
    names = ", ".join(f'"{column.name}"' for column in columns)
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:  # type: ignore[union-attr]
        for row in rows:
            copy.write_row(row)
