"""Queueing formulas for the fast analytical screen: Erlang C, Allen-Cunneen, non-preemptive priorities.

The batch slots of a fleet are the servers: ``c = replicas * slots per replica``, a request holds a slot from
admission to its last token (service time ``S``), requests arrive at rate ``lambda``, the offered load is
``a = lambda * S`` Erlangs.

* Erlang C (M/M/c): the probability that an arrival waits ``C(c, a) = c B / (c - a (1 - B))`` with ``B`` the
  Erlang B blocking probability ``B = (a^c / c!) / sum_k a^k / k!``, computed through the Poisson
  distribution (``B = pmf(c; a) / cdf(c; a)``) so it stays exact for thousands of servers. The mean wait is
  ``Wq = C S / (c - a)``, and the wait of those who wait is exponential with mean ``S / (c - a)``.
  (Kleinrock, *Queueing Systems* vol. 1, 1975, sec. 3.5; Gross & Harris, *Fundamentals of Queueing Theory*.)
* Allen-Cunneen (G/G/c): ``Wq ~ Wq(M/M/c) * (ca^2 + cs^2) / 2`` with ``ca^2``, ``cs^2`` the squared
  coefficients of variation of inter-arrival and service times (Allen, *Probability, Statistics and Queueing
  Theory*, 1990). For Poisson arrivals and exponential service it is Erlang C exactly.
* Non-preemptive priorities with equal service times (Cobham 1954, in its M/M/c form): class ``k`` waits
  ``Wq_k = C S / (c (1 - s_{k-1}) (1 - s_k))`` where ``s_k`` is the load (per server) of the classes of
  priority at least ``k``'s.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def erlang_b(servers: np.ndarray | float, load: np.ndarray | float) -> np.ndarray:
    """Erlang B blocking probability for ``servers`` servers and ``load`` Erlangs (vectorised).

    >>> round(float(erlang_b(2, 1.0)), 6)  # (1/2) / (1 + 1 + 1/2)
    0.2
    """
    c = np.asarray(servers, dtype=float)
    a = np.asarray(load, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        log_pmf = c * np.log(np.maximum(a, 1e-300)) - a - special.gammaln(c + 1)
        cdf = special.pdtr(c, a)
        value = np.exp(log_pmf) / np.maximum(cdf, 1e-300)
    return np.asarray(np.where(a > 0, np.where(np.isfinite(a), np.minimum(value, 1.0), 1.0), 0.0))


def erlang_c(servers: np.ndarray | float, load: np.ndarray | float) -> np.ndarray:
    """Erlang C: probability an arrival waits; 1 where ``load >= servers`` (unstable).

    >>> round(float(erlang_c(2, 1.0)), 6)  # M/M/2 at 50% utilisation: 1/3
    0.333333
    """
    c = np.asarray(servers, dtype=float)
    a = np.asarray(load, dtype=float)
    b = erlang_b(c, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = c * b / (c - a * (1.0 - b))
    return np.asarray(np.where(a >= c, 1.0, np.clip(value, 0.0, 1.0)))


def mean_wait_s(
    servers: np.ndarray | float,
    arrival_rate: np.ndarray | float,
    service_s: np.ndarray | float,
    arrival_cv2: float = 1.0,
    service_cv2: float = 1.0,
) -> np.ndarray:
    """Allen-Cunneen mean wait in queue (seconds); ``inf`` where unstable. Erlang C when both cv2 are 1.

    >>> round(float(mean_wait_s(1, 0.5, 1.0)), 6)  # M/M/1 at rho 0.5: rho / (mu - lambda) = 1
    1.0
    """
    c = np.asarray(servers, dtype=float)
    s = np.asarray(service_s, dtype=float)
    a = np.asarray(arrival_rate, dtype=float) * s
    with np.errstate(divide="ignore", invalid="ignore"):
        wait = erlang_c(c, a) * s / (c - a) * (arrival_cv2 + service_cv2) / 2.0
    return np.asarray(np.where(a >= c, np.inf, wait))


def priority_mean_waits_s(
    servers: float, arrival_rates: np.ndarray, service_s: float, priorities: np.ndarray, cv_factor: float = 1.0
) -> np.ndarray:
    """Mean wait per class under non-preemptive priorities (Cobham, M/M/c form), scaled by ``cv_factor``.

    With one class this is the Erlang C mean wait. Classes of equal priority share a level.

    >>> w = priority_mean_waits_s(1, np.array([0.25, 0.25]), 1.0, np.array([1, 0]))
    >>> [round(float(x), 4) for x in w]  # M/M/1 rho 0.5: high 0.5/(1*0.75), low 0.5/(0.75*0.5)
    [0.6667, 1.3333]
    """
    rates = np.asarray(arrival_rates, dtype=float)
    prio = np.asarray(priorities)
    load = float(rates.sum()) * service_s
    if load >= servers:
        return np.full(rates.shape, np.inf)
    base = float(erlang_c(servers, load)) * service_s / servers * cv_factor
    waits = np.empty(rates.shape)
    for i, level in enumerate(prio):
        above = rates[prio > level].sum() * service_s / servers
        at_or_above = rates[prio >= level].sum() * service_s / servers
        waits[i] = base / ((1.0 - above) * (1.0 - at_or_above))
    return waits


def wait_quantile_s(prob_wait: np.ndarray, mean_wait: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of the wait: 0 when fewer than ``1 - q`` wait, else the exponential tail's quantile.

    Those who wait, wait an exponential time of mean ``mean_wait / prob_wait`` (exact for M/M/c).

    >>> round(float(wait_quantile_s(np.array(0.5), np.array(1.0), 0.95)), 4)  # 2 * ln(0.5 / 0.05)
    4.6052
    """
    p = np.asarray(prob_wait, dtype=float)
    w = np.asarray(mean_wait, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (w / p) * np.log(p / (1.0 - q))
    return np.asarray(np.where(p <= 1.0 - q, 0.0, np.where(np.isfinite(w), value, np.inf)))


def mixture_quantile_s(
    weights: np.ndarray, shift_s: np.ndarray, prob_wait: np.ndarray, mean_wait_s: np.ndarray, q: float
) -> float:
    """The ``q`` quantile of a mixture of ``shift + wait`` over windows (weights = their share of requests).

    Each window's wait is 0 with probability ``1 - p`` and exponential with mean ``mean_wait / p`` otherwise,
    so ``P(X > t) = sum_i w_i * (1 if t < shift_i else p_i * exp(-(t - shift_i) p_i / W_i))``; solved on
    successively finer grids. Windows whose wait is unbounded (overloaded) count as above every ``t``: the
    quantile is infinite only when they hold more than ``1 - q`` of the requests.

    >>> mixture_quantile_s(np.array([1.0]), np.array([2.0]), np.array([0.0]), np.array([0.0]), 0.95)
    2.0
    """
    w = np.asarray(weights, dtype=float) / float(np.sum(weights))
    shift = np.asarray(shift_s, dtype=float)
    p = np.asarray(prob_wait, dtype=float)
    mean = np.asarray(mean_wait_s, dtype=float)
    # a window that cannot keep up (infinite wait or shift) puts all its requests above any finite time
    lost = (~np.isfinite(mean) | ~np.isfinite(shift)) & (w > 0)
    lost_mass = float(w[lost].sum())
    if lost_mass >= 1.0 - q:
        return float("inf")
    w, shift, p, mean = w[~lost], shift[~lost], p[~lost], mean[~lost]
    if w.size == 0:
        return float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(mean > 0, p / mean, np.inf)

    def tails(t: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            gap = t[None, :] - shift[:, None]
            waited = np.where(np.isfinite(rate)[:, None], p[:, None] * np.exp(-gap * rate[:, None]), 0.0)
        return np.asarray((w[:, None] * np.where(gap < 0, 1.0, waited)).sum(axis=0)) + lost_mass

    target = 1.0 - q
    high = float(np.max(shift)) + 1.0 if shift.size else 1.0
    while tails(np.array([high]))[0] > target:
        high *= 2.0
        if high > 1e9:
            return float("inf")
    low = 0.0
    for _ in range(3):  # three grids of 256 points: the bracket shrinks 256^3-fold
        grid = np.linspace(low, high, 256)
        above = tails(grid) > target
        if not above.any():
            return float(grid[0])
        i = int(np.flatnonzero(above)[-1])
        low, high = float(grid[i]), float(grid[min(i + 1, grid.size - 1)])
    return high
