"""Exact allocation of money to keys in proportion to a driver, in integer micro-dollars.

Shared costs (a GPU pool, a vector database, on-call time) are split over tenants,
features or requests by a driver (tokens, requests, GPU-seconds, ...). Shares are
computed with the largest-remainder (Hamilton) method on integers, so the parts
always add up to the amount exactly: nothing is lost to rounding and nothing is
counted twice. Allocation runs on aggregates (one row per key and period), never
per event.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any

MICROS_PER_USD = 1_000_000


def to_micros(amount: Decimal | int | float | str) -> int:
    """Return an amount in USD as integer micro-dollars (banker's rounding).

    >>> to_micros(Decimal("12.3456785")), to_micros("0.0000005")
    (12345678, 0)
    """
    value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    return int((value * MICROS_PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_micros(micros: int) -> Decimal:
    """Return integer micro-dollars as an exact Decimal amount in USD.

    >>> from_micros(33_333_334)
    Decimal('33.333334')
    """
    return Decimal(micros) / MICROS_PER_USD


def split_exact(amount_micros: int, weights: Sequence[int | float | Decimal]) -> list[int] | None:
    """Split ``amount_micros`` in proportion to ``weights``; the parts add up to it exactly.

    Each part is the proportional share rounded down, and the micro-dollars left over
    go one each to the largest remainders (ties: the earlier weight). Negative amounts
    (credits) are split the same way. Returns None when the weights sum to zero: there
    is nothing to allocate by, and the caller reports the amount as unallocated.

    >>> split_exact(100_000_000, [1, 1, 1])
    [33333334, 33333333, 33333333]
    >>> split_exact(-10, [3, 1])
    [-8, -2]
    >>> split_exact(5, [0, 0]) is None
    True
    """
    if any(w < 0 for w in weights):
        raise ValueError("allocation weights cannot be negative")
    exact = [Fraction(Decimal(str(w))) if not isinstance(w, int) else Fraction(w) for w in weights]
    total = sum(exact, Fraction(0))
    if total == 0:
        return None
    sign = -1 if amount_micros < 0 else 1
    amount = abs(amount_micros)
    shares = [amount * w / total for w in exact]
    parts = [s.numerator // s.denominator for s in shares]
    left = amount - sum(parts)
    # largest remainder first; ties go to the earlier key so the result is deterministic
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return [sign * p for p in parts]


@dataclass
class Allocation:
    """Amounts allocated to (group, key), and what could not be allocated, in micro-dollars."""

    allocated: dict[tuple[Hashable, Hashable], int] = field(default_factory=dict)
    unallocated: dict[Hashable, int] = field(default_factory=dict)

    def total(self) -> int:
        return sum(self.allocated.values()) + sum(self.unallocated.values())


def allocate(amounts: Mapping[Any, int], drivers: Iterable[tuple[Any, Any, int | float | Decimal]]) -> Allocation:
    """Allocate each group's amount (e.g. a layer's cost on one day) to keys by their driver.

    ``drivers`` holds (group, key, weight) rows, e.g. (day, tenant, tokens). A group with
    no driver, or only zero weights, stays unallocated (never dropped, never spread).

    >>> a = allocate({"d1": 100, "d2": 7}, [("d1", "acme", 3), ("d1", "globex", 1)])
    >>> a.allocated, a.unallocated, a.total()
    ({('d1', 'acme'): 75, ('d1', 'globex'): 25}, {'d2': 7}, 107)
    """
    by_group: dict[Hashable, list[tuple[Hashable, int | float | Decimal]]] = {}
    for group, key, weight in drivers:
        by_group.setdefault(group, []).append((key, weight))
    result = Allocation()
    for group, amount in amounts.items():
        rows = by_group.get(group, [])
        parts = split_exact(amount, [w for _, w in rows]) if rows else None
        if parts is None:
            result.unallocated[group] = result.unallocated.get(group, 0) + amount
            continue
        for (key, _), part in zip(rows, parts, strict=True):
            result.allocated[(group, key)] = result.allocated.get((group, key), 0) + part
    return result
