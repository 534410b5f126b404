"""Arrow columns for the demo's synthetic tables, built from integer codes without a Python loop per row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from unitcost.schema import INTERNAL_COLUMNS, Table

Ints = NDArray[np.int64]
Floats = NDArray[np.float64]


def string_column(codes: Ints, values: tuple[str, ...] | list[str]) -> pa.Array:
    """A string column from codes into ``values`` (code -1: null), without a Python loop per row."""
    return pa.array(values, pa.string()).take(pa.array(codes, pa.int64(), mask=codes < 0))


def ids(prefix: str, numbers: Ints, width: int) -> pa.Array:
    """Strings ``prefix`` + zero-padded ``numbers``, built byte-wise, one pass per digit.

    >>> ids("req-", np.array([7, 123]), 4).to_pylist()
    ['req-0007', 'req-0123']
    """
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    size = head.size + width
    data = np.empty((numbers.size, size), dtype=np.uint8)
    data[:, : head.size] = head
    rest = numbers.astype(np.int64)
    for position in range(size - 1, head.size - 1, -1):
        data[:, position] = rest % 10 + ord("0")
        rest //= 10
    offsets = np.arange(0, size * (numbers.size + 1), size, dtype=np.int32)
    return pa.StringArray.from_buffers(numbers.size, pa.py_buffer(offsets), pa.py_buffer(data))


def float_column(values: Floats) -> pa.Array:
    """A float column, NaN as null."""
    return pa.array(values, pa.float64(), mask=np.isnan(values))


def arrow_schema(table: Table) -> pa.Schema:
    """Return the Arrow schema of a canonical table's input columns (JSON columns as JSON text).

    >>> from unitcost.schema import OUTCOMES
    >>> arrow_schema(OUTCOMES).field("ts").type
    TimestampType(timestamp[us])
    """
    types = {
        "TIMESTAMP": pa.timestamp("us"),
        "VARCHAR": pa.string(),
        "JSON": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
    }
    return pa.schema([pa.field(c.name, types[c.sql_type]) for c in table.columns if c.name not in INTERNAL_COLUMNS])
