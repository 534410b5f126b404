"""Exact allocation: hand-computed splits and the conservation property."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from unitcost.ledger.allocation import allocate, from_micros, split_exact, to_micros

EXAMPLES = [
    # amount (micros), weights, expected parts
    (100_000_000, [1, 1, 1], [33_333_334, 33_333_333, 33_333_333]),
    (10, [1, 2, 3, 4], [1, 2, 3, 4]),
    (7, [1, 1], [4, 3]),  # a tie goes to the earlier key
    (5, [0, 1, 0], [0, 5, 0]),
    (-100, [1, 3], [-25, -75]),  # credits are split like charges
    (1_000_000, [0.5, 0.25, 0.25], [500_000, 250_000, 250_000]),
    (2, [Decimal("0.1"), Decimal("0.2"), Decimal("0.7")], [0, 1, 1]),  # shares 0.2, 0.4, 1.4: the tie at .4 goes first
]


@pytest.mark.parametrize(("amount", "weights", "expected"), EXAMPLES)
def test_split_by_hand(amount: int, weights: list, expected: list[int]) -> None:  # type: ignore[type-arg]
    assert split_exact(amount, weights) == expected


def test_zero_or_negative_weights() -> None:
    assert split_exact(100, []) is None
    assert split_exact(100, [0, 0]) is None
    with pytest.raises(ValueError, match="negative"):
        split_exact(100, [1, -1])


def test_micros_round_trip() -> None:
    assert to_micros("1234.5678905") == 1_234_567_890  # half to even
    assert from_micros(to_micros("0.01")) == Decimal("0.01")


@given(
    amount=st.integers(-(10**15), 10**15),
    weights=st.lists(
        st.one_of(st.integers(0, 10**12), st.floats(0, 1e9, allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=30,
    ),
)
def test_parts_add_up_exactly_and_stay_proportional(amount: int, weights: list) -> None:  # type: ignore[type-arg]
    parts = split_exact(amount, weights)
    exact = [Fraction(Decimal(str(w))) for w in weights]
    if sum(exact) == 0:
        assert parts is None
        return
    assert parts is not None
    assert sum(parts) == amount
    total = sum(exact)
    for part, w in zip(parts, exact, strict=True):
        assert abs(part - amount * w / total) < 1  # within one micro-dollar of the exact share
        if w == 0:
            assert part == 0


@given(
    amounts=st.dictionaries(st.sampled_from(["d1", "d2", "d3", "d4"]), st.integers(-(10**9), 10**9)),
    drivers=st.lists(
        st.tuples(st.sampled_from(["d1", "d2", "d3"]), st.sampled_from(["a", "b", "c"]), st.integers(0, 1000)),
        max_size=20,
    ),
)
def test_allocation_conserves_every_group(amounts: dict, drivers: list) -> None:  # type: ignore[type-arg]
    result = allocate(amounts, drivers)
    assert result.total() == sum(amounts.values())
    for group, amount in amounts.items():
        allocated = sum(v for (g, _), v in result.allocated.items() if g == group)
        assert allocated + result.unallocated.get(group, 0) == amount
