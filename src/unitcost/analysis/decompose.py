"""Exact, order-independent decomposition of a change in a sum of products (Shapley / Sun).

A cost that is a sum of terms, each a product of factors, ``C = sum_t prod_i x[t, i]``, changes from period 0
to period 1. The Shapley value of factor ``i`` in term ``t`` is the average, over every order in which the
factors could switch from their period-0 to their period-1 value, of the change in the term when ``i``
switches::

    phi[t, i] = sum_{S subset of others} |S|! (k - |S| - 1)! / k! * (f_t(S + {i}) - f_t(S))

where ``f_t(S)`` is the product with the factors in ``S`` at period-1 values and the others at period-0 values.
The contributions add up exactly to the change of each term (the efficiency property), no residual and no
dependence on order; zero values need no special case (unlike log-mean Divisia indices). References:
Albrecht, Francois & Schoors (2002), "A Shapley decomposition of carbon emissions without residuals",
Energy Policy 30(9); Ang, Liu & Chew (2003), "Perfect decomposition techniques in energy and environmental
analysis", Energy Policy 31(14) (shows it equals Sun's 1998 "jointly created and equally distributed" method).
"""

from __future__ import annotations

from math import factorial

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]


def shapley_product(x0: Floats, x1: Floats) -> Floats:
    """Return each factor's contribution (terms x factors) to the change of ``prod(x1) - prod(x0)`` per term.

    >>> c = shapley_product(np.array([[2.0, 3.0]]), np.array([[4.0, 6.0]]))  # 6 -> 24
    >>> c.tolist(), float(c.sum())
    ([[9.0, 9.0]], 18.0)
    """
    x0 = np.atleast_2d(np.asarray(x0, dtype=np.float64))
    x1 = np.atleast_2d(np.asarray(x1, dtype=np.float64))
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape, got {x0.shape} and {x1.shape}")
    n, k = x0.shape
    masks = np.arange(1 << k)
    bits = ((masks[:, None] >> np.arange(k)[None, :]) & 1).astype(bool)  # (2^k, k)
    # f[m, t] = product over factors of (x1 if bit set else x0)
    f = np.ones((1 << k, n))
    for i in range(k):
        f *= np.where(bits[:, i : i + 1], x1[None, :, i], x0[None, :, i])
    size = bits.sum(axis=1)
    weight = np.array([factorial(s) * factorial(k - s - 1) / factorial(k) for s in range(k)])
    out = np.zeros((n, k))
    for i in range(k):
        without = masks[~bits[:, i]]
        out[:, i] = (weight[size[without]][:, None] * (f[without | (1 << i)] - f[without])).sum(axis=0)
    return out


def centred_shares(n0: Floats, d0: Floats, n1: Floats, d1: Floats) -> Floats:
    """Return each part's share of the change in a ratio ``sum(n) / sum(d)`` (shares add up to 1).

    The change of ``x = sum_k w_k x_k`` (``w_k = d_k / sum d``, ``x_k = n_k / d_k``) splits exactly into
    ``delta_k = mean(w_k) * (x1_k - x0_k) + (mean(x_k) - x0) * (w1_k - w0_k)``: each part's own change plus its
    shift in weight, measured from the baseline ratio ``x0`` (exact for any constant, since the weight shifts
    sum to zero), so a part whose weight grows at the baseline average contributes nothing and a part that
    replaces another (a new release) carries its whole difference from the baseline. A part missing in one
    period takes its other period's ratio. When the changes cancel (sum near zero), the shares fall back to
    each part's average weight.

    >>> centred_shares(np.array([10.0, 10.0]), np.array([10.0, 10.0]),
    ...                np.array([20.0, 10.0]), np.array([10.0, 10.0])).tolist()
    [1.0, 0.0]
    """
    d0s, d1s = d0.sum(), d1.sum()
    w0 = d0 / d0s if d0s else np.zeros_like(d0)
    w1 = d1 / d1s if d1s else np.zeros_like(d1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x0 = np.where(d0 > 0, n0 / d0, np.nan)
        x1 = np.where(d1 > 0, n1 / d1, np.nan)
    x0 = np.where(np.isnan(x0), x1, x0)
    x1 = np.where(np.isnan(x1), x0, x1)
    x0 = np.nan_to_num(x0)
    x1 = np.nan_to_num(x1)
    ref = n0.sum() / d0s if d0s else (n1.sum() / d1s if d1s else 0.0)
    delta = 0.5 * (w0 + w1) * (x1 - x0) + (0.5 * (x0 + x1) - ref) * (w1 - w0)
    total = delta.sum()
    scale = np.abs(delta).sum()
    if scale > 0 and abs(total) > 1e-9 * scale:
        return np.asarray(delta / total, dtype=np.float64)
    avg = 0.5 * (w0 + w1)
    return np.asarray(avg / avg.sum(), dtype=np.float64) if avg.sum() else np.full(len(d0), 1.0 / max(len(d0), 1))
