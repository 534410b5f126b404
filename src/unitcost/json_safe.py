"""JSON documents that strict parsers accept: non-finite numbers become null, numpy scalars plain Python."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity (at any depth of dicts, lists and tuples) replaced by None.

    >>> json_safe({"a": float("nan"), "b": [1.5, float("inf")], "c": np.float64(2.0)})
    {'a': None, 'b': [1.5, None], 'c': 2.0}
    """
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
