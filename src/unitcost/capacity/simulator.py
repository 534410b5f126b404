"""Discrete-event simulation of iteration-level continuous batching (vLLM / TensorRT-LLM style) on a fleet.

:func:`simulate` replays :class:`~unitcost.capacity.types.Requests` on a fleet of model-server replicas and
measures per-request TTFT and end-to-end latency, the fleet over time and the replica-seconds paid for. The
core runs compiled (numba) over plain arrays: no Python work per token, step or request.

The model, which is the specification:

**Fleet.** Replica slots ``0 .. max_replicas-1``. At t=0 ``max(min_replicas, initial_replicas)`` slots (lowest
indices; at most ``max_replicas`` and the availability at t=0; exactly ``min_replicas`` under policy ``fixed``) are
ready; the others are off. ``warm_pool`` standby replicas (outside the slots, on-demand, not subject to the
availability cap) are paid for from t=0 and do not serve. A slot is *warming* (paid, not serving), *ready*
(serving), *draining* (removed by the scaler: admits nothing, finishes its running sequences, then stops) or *off*.

**Router and admission.** One central router keeps one FIFO queue per class. A replica admits at each of its step
boundaries, and when idle (no running sequence) as soon as a request arrives or it becomes ready (after the other
events of that instant, so requests arriving together share its first step). It admits the head of the non-empty
queue with the highest ``class_priority`` (equal priorities: lower class id first) while it runs fewer than
``max_batch`` sequences and its free KV capacity is at least the request's ``input_tokens + output_tokens``: the
whole sequence is reserved up front, so there is no preemption. If that head request does not fit, the replica
admits nothing more at this boundary (no skipping ahead, so a big request is never starved by small ones behind
it). Idle replicas take arrivals lowest index first.

**Steps.** A step processes one decode token for every running sequence past its prefill, plus prefill chunks
of the sequences still in prefill, in admission order, within the budget ``max_batched_tokens - decodes``
(chunked prefill). It lasts ``engine.step.step_s(T, A, K)``: ``T`` tokens in the step; ``A`` attention pairs
(a decode: its context length; a chunk of ``c`` tokens from position ``p``: ``c * (p + c / 2)``); ``K`` the
context read (a decode: its context length; a chunk: ``p + c``). A decode's context length is its input plus
the tokens generated so far. A sequence emits its first token at the end of the step completing its prefill
(TTFT = that time - arrival), then one token per step; it finishes at the end of the step emitting token
``output_tokens`` (e2e = finish - arrival), at once with its prefill when ``output_tokens == 1``. Its KV
reservation is released then. A request arriving exactly at a step boundary is admitted at that boundary.

**Scaling** (every ``interval_s``, at ``interval_s, 2 * interval_s, ...``). The desired count follows
``policy`` (see :class:`~unitcost.capacity.types.ScalingSpec`; ``queue`` keeps the count while
``0 < waiting <= target``, and with no queue asks for ``ceil(running / max_batch)``), clamped to
``[min_replicas, max_replicas]`` and to the availability cap. The current count is ready + warming: replicas
still warming count, so a tick does not ask twice for the same shortfall. Scale up starts the lowest off slots:
one taken from a warm standby is ready after ``warm_start_s`` and the pool is replenished at once by a new
standby that is warm ``warmup_s`` later (the pool is paid for all along); otherwise the slot is ready after
``warmup_s``. Scale down: once the desired count has been below the current one at every tick for
``scale_down_after_s``, each tick removes one replica: a warming one (the latest started) first, else the ready
one with the fewest running sequences, which drains. A slot still draining cannot be restarted.

**Disruptions.** A spot slot (``disruptions.spot[i]``) is interrupted by a Poisson process at
``spot_interruptions_per_hour`` (one stream per slot, seeded from ``numpy.random.default_rng(seed)``; an
interruption of an off slot has no effect and is not counted). An interrupted replica goes off; its running
sequences go back to the FRONT of their class queues in admission order and start over (counted in
``restarted_requests``; their TTFT is measured again, from the original arrival, at the first token of the
new attempt). The scaler may start the slot again (warm-up). An availability step ``(time_s, cap)`` limits the
replicas holding GPUs (warming + ready + draining) from its time on; above the cap, the most recently started
are lost like interrupted ones (counted in ``extra["availability_losses"]``, not in ``interruptions``).

**Closed loop** (``requests.concurrency > 0``): that many clients each send a request (the next row) at t=0;
when a request finishes its client sends the next row at once (zero think time), while ``t < duration_s``
(when set) and rows remain. Unsent rows have nan arrival.

**Window and horizon.** The window is ``[0, W]``: ``W = duration_s``, or when it is 0, the last arrival (open loop)
or the last completion (closed loop). Open-loop rows arriving after ``duration_s`` are not offered. The simulation
runs on to ``W + drain_s`` (default 600 s) so queued work can finish; a closed loop without ``duration_s`` runs
until every row is served, or gives up when nothing has finished for ``drain_s`` (the window then ends at its last
event). Requests not finished by then have nan e2e (nan TTFT when no first token) and ``served`` False.

**Accounting** covers the window only (the cost of serving this workload): ``replica_seconds`` = paid slot time
(warming + ready + draining) plus the warm pool (``warm_pool * W``); ``busy_replica_seconds`` = time of ready or
draining replicas with at least one running sequence; ``spot_replica_seconds`` = the paid time of spot slots. The
timeline is sampled at ``0, sample_s, ...`` up to ``W`` (the state after all events at that time):
``provisioned_replicas`` counts every paid replica (warming + ready + draining + warm pool), so its integral is
``replica_seconds``. ``horizon_s`` is ``W``. ``extra`` holds ``window_s`` (``W``), ``simulated_until_s`` (the last
event simulated), ``steps``, ``availability_losses``, ``offered_requests`` and ``warm_pool_replica_seconds``.

>>> import numpy as np
>>> from unitcost.capacity.types import EngineSpec, Requests, ScalingSpec, StepCoefficients
>>> reqs = Requests(np.array([0.0, 0.0]), np.array([10, 10]), np.array([3, 1]), np.array([0, 0]))
>>> engine = EngineSpec(StepCoefficients(0.01, 0, 0, 0, 0), max_batch=8, kv_capacity_tokens=1000)
>>> res = simulate(reqs, engine, ScalingSpec())
>>> [round(float(x), 6) for x in res.ttft_s], [round(float(x), 6) for x in res.e2e_s]
([0.01, 0.01], [0.03, 0.01])
"""

from __future__ import annotations

import math

import numba
import numpy as np

from unitcost.capacity.simulator_inputs import POLICIES, invalid, validate
from unitcost.capacity.types import Disruptions, EngineSpec, Requests, ScalingSpec, SimulationResult

NO_DISRUPTIONS = Disruptions()
DEFAULT_DRAIN_S = 600.0

# replica states
_OFF, _WARMING, _READY, _DRAINING = 0, 1, 2, 3
_NEVER = 1 << 62  # a finish step that never comes

# The compiled core works on a few arrays of fields, named by these indices:
# requests: rq[q, field] (int64) and rt[q, field] (float64)
_IN, _OUT, _CLS, _ADM = range(4)
_ARR, _TTFT, _E2E = range(3)
# class queues: qm[class, field]; the queue of class c is the ring qbuf[off : off + cap]; _QORDER: by priority
_QOFF, _QCAP, _QHEAD, _QSIZE, _QORDER = range(5)
# replicas: ri[r, field] (int64), rf[r, field] (float64), and seqs[r, list, i]: the prefill FIFO (_SPF, a ring
# in admission order) and the decoding set (_SDEC request, _SFIN the step it finishes at)
_ST, _NRUN, _NDEC, _KV, _CTX, _STEPS, _MINFIN, _PFH, _PFN, _PFPOS, _PLANC, _PLANP, _SPOT = range(13)
_END, _READYAT, _PAIDSINCE, _BUSYSINCE, _NEXTSPOT = range(5)
_SPF, _SDEC, _SFIN = range(3)
# global counters gi (int64) and sums gf (float64)
_GWAIT, _GRUN, _GNEXT, _GREADY, _GWARM, _GDRAIN, _GADM, _GRESTART, _GINTR, _GLOSS, _GCAP, _GSTEPS, _GFLAG = range(13)
_FW, _FPAID, _FBUSY, _FSPOT, _FBELOW, _FLASTDONE = range(6)
# parameters pi (int64) and pf (float64: the 7 step coefficients, then the rest)
_PMB, _PMBT, _PKV, _PCLOSED, _PN, _PNCLASS, _PR, _PMINR, _PMAXR, _PPOLICY, _PPOOL, _PEXACT, _PINIT = range(13)
_COH, _CCOMP, _CATT, _CW, _CKV, _CCOMM, _CLAT = range(7)
_PDUR, _PINTERVAL, _PWARMUP, _PSDOWN, _PWARMSTART, _PTU, _PTQ, _PSAMPLE, _PDRAIN, _PSPOTRATE = range(7, 17)

_Array = np.ndarray


@numba.njit(cache=True)
def _uniform(rng: _Array, r: int) -> float:
    """Next uniform in [0, 1) of slot ``r``'s splitmix64 stream (state in ``rng[r]``)."""
    s = rng[r] + np.uint64(0x9E3779B97F4A7C15)
    rng[r] = s
    z = (s ^ (s >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, inline="always")
def _push(q: int, rq: _Array, qbuf: _Array, qm: _Array, front: bool) -> None:
    """Put request ``q`` at the back (or the front) of its class queue."""
    c = rq[q, _CLS]
    if front:
        qm[c, _QHEAD] = (qm[c, _QHEAD] - 1 + qm[c, _QCAP]) % qm[c, _QCAP]
        qbuf[qm[c, _QOFF] + qm[c, _QHEAD]] = q
    else:
        qbuf[qm[c, _QOFF] + (qm[c, _QHEAD] + qm[c, _QSIZE]) % qm[c, _QCAP]] = q
    qm[c, _QSIZE] += 1


@numba.njit(cache=True, inline="always")
def _close_paid(r: int, t: float, ri: _Array, rf: _Array, gf: _Array) -> None:
    w = gf[_FW]
    amount = max(0.0, min(t, w) - min(rf[r, _PAIDSINCE], w))
    gf[_FPAID] += amount
    if ri[r, _SPOT] == 1:
        gf[_FSPOT] += amount


@numba.njit(cache=True, inline="always")
def _close_busy(r: int, t: float, rf: _Array, gf: _Array) -> None:
    w = gf[_FW]
    gf[_FBUSY] += max(0.0, min(t, w) - min(rf[r, _BUSYSINCE], w))


@numba.njit(cache=True)
def _slot_off(r: int, t: float, ri: _Array, rf: _Array, gi: _Array, gf: _Array) -> None:
    """Stop paying for slot ``r`` (its sequences already gone) and reset it."""
    st = ri[r, _ST]
    if st == _OFF:
        return
    _close_paid(r, t, ri, rf, gf)
    if st == _WARMING:
        gi[_GWARM] -= 1
    elif st == _READY:
        gi[_GREADY] -= 1
    else:
        gi[_GDRAIN] -= 1
    ri[r, _ST] = _OFF
    for f in (_NRUN, _NDEC, _KV, _CTX, _PFN, _PFPOS, _PLANC, _PLANP):
        ri[r, f] = 0
    ri[r, _MINFIN] = _NEVER
    rf[r, _END] = math.inf


@numba.njit(cache=True, inline="always")
def _admit(r: int, ri: _Array, gi: _Array, pi: _Array, rq: _Array, qbuf: _Array, qm: _Array, seqs: _Array) -> None:
    """Admit waiting requests onto replica ``r`` while they fit (highest priority first, no skipping)."""
    mb = pi[_PMB]
    while ri[r, _NRUN] < mb and gi[_GWAIT] > 0:
        c = 0
        for k in range(pi[_PNCLASS]):
            c = qm[k, _QORDER]
            if qm[c, _QSIZE] > 0:
                break
        q = qbuf[qm[c, _QOFF] + qm[c, _QHEAD]]
        need = rq[q, _IN] + rq[q, _OUT]
        if pi[_PKV] - ri[r, _KV] < need:
            break
        qm[c, _QHEAD] = (qm[c, _QHEAD] + 1) % qm[c, _QCAP]
        qm[c, _QSIZE] -= 1
        gi[_GWAIT] -= 1
        ri[r, _NRUN] += 1
        gi[_GRUN] += 1
        ri[r, _KV] += need
        if ri[r, _PFN] == 0:
            ri[r, _PFPOS] = 0
        seqs[r, _SPF, (ri[r, _PFH] + ri[r, _PFN]) % mb] = q
        ri[r, _PFN] += 1
        rq[q, _ADM] = gi[_GADM]
        gi[_GADM] += 1


@numba.njit(cache=True, inline="always")
def _start_step(r: int, t: float, ri: _Array, rf: _Array, pi: _Array, pf: _Array, rq: _Array, seqs: _Array) -> None:
    """Plan replica ``r``'s next step (decodes, then prefill chunks in admission order) and set its end."""
    mb = pi[_PMB]
    nd = ri[r, _NDEC]
    budget = pi[_PMBT] - nd
    tokens = nd
    pairs = float(ri[r, _CTX])
    kv = float(ri[r, _CTX])
    ncomp = 0
    partial = 0
    idx = ri[r, _PFH]
    pos = ri[r, _PFPOS]
    i = 0
    while i < ri[r, _PFN] and budget > 0:
        rem = rq[seqs[r, _SPF, idx], _IN] - pos
        if rem <= budget:
            c = rem
            ncomp += 1
        else:
            c = budget
            partial = c
        tokens += c
        pairs += c * (pos + 0.5 * c)
        kv += pos + c
        budget -= c
        if partial > 0:
            break
        pos = 0
        idx = (idx + 1) % mb
        i += 1
    ri[r, _PLANC] = ncomp
    ri[r, _PLANP] = partial
    compute = pf[_CCOMP] * tokens + pf[_CATT] * pairs
    memory = pf[_CW] + pf[_CKV] * kv
    rf[r, _END] = t + pf[_COH] + pf[_CLAT] + pf[_CCOMM] * tokens + max(compute, memory)


@numba.njit(cache=True, inline="always")
def _finish(q: int, r: int, t: float, ri: _Array, gi: _Array, gf: _Array, pi: _Array, pf: _Array, rq: _Array,
            rt: _Array, qbuf: _Array, qm: _Array) -> None:  # fmt: skip
    """Request ``q`` emits its last token on replica ``r`` at ``t``; a closed-loop client sends its next row."""
    rt[q, _E2E] = t - rt[q, _ARR]
    ri[r, _KV] -= rq[q, _IN] + rq[q, _OUT]
    ri[r, _NRUN] -= 1
    gi[_GRUN] -= 1
    gf[_FLASTDONE] = t
    if pi[_PCLOSED] == 1:
        nxt = gi[_GNEXT]
        if nxt < pi[_PN] and (pf[_PDUR] <= 0.0 or t < pf[_PDUR]):
            rt[nxt, _ARR] = t
            _push(nxt, rq, qbuf, qm, False)
            gi[_GWAIT] += 1
            gi[_GNEXT] = nxt + 1
            gi[_GFLAG] = 1


@numba.njit(cache=True, inline="always")
def _end_step(r: int, t: float, ri: _Array, rf: _Array, gi: _Array, gf: _Array, pi: _Array, pf: _Array, rq: _Array,
              rt: _Array, qbuf: _Array, qm: _Array, seqs: _Array) -> None:  # fmt: skip
    """Apply replica ``r``'s step ending at ``t`` (tokens, completions), admit, and start its next step.

    An idle replica woken by :func:`_wake` comes here too, with no step to apply.
    """
    mb = pi[_PMB]
    busy = ri[r, _NRUN] > 0
    if busy:
        ri[r, _STEPS] += 1
        gi[_GSTEPS] += 1
        s = ri[r, _STEPS]
        nd = ri[r, _NDEC]
        ri[r, _CTX] += nd  # every decoding sequence's context grew by one token
        if nd > 0 and ri[r, _MINFIN] == s:  # some decode finishes now: find them (the only scan of the batch)
            newmin = _NEVER
            j = 0
            while j < nd:
                if seqs[r, _SFIN, j] == s:
                    q = seqs[r, _SDEC, j]
                    ri[r, _CTX] -= rq[q, _IN] + rq[q, _OUT]
                    _finish(q, r, t, ri, gi, gf, pi, pf, rq, rt, qbuf, qm)
                    nd -= 1
                    seqs[r, _SDEC, j] = seqs[r, _SDEC, nd]
                    seqs[r, _SFIN, j] = seqs[r, _SFIN, nd]
                else:
                    newmin = min(newmin, seqs[r, _SFIN, j])
                    j += 1
            ri[r, _NDEC] = nd
            ri[r, _MINFIN] = newmin
        ncomp = ri[r, _PLANC]
        for _ in range(ncomp):  # prefills completed: first token now
            q = seqs[r, _SPF, ri[r, _PFH]]
            ri[r, _PFH] = (ri[r, _PFH] + 1) % mb
            ri[r, _PFN] -= 1
            rt[q, _TTFT] = t - rt[q, _ARR]
            if rq[q, _OUT] == 1:
                _finish(q, r, t, ri, gi, gf, pi, pf, rq, rt, qbuf, qm)
            else:
                nd = ri[r, _NDEC]
                fin = s + rq[q, _OUT] - 1
                seqs[r, _SDEC, nd] = q
                seqs[r, _SFIN, nd] = fin
                ri[r, _NDEC] = nd + 1
                ri[r, _CTX] += rq[q, _IN] + 1
                if fin < ri[r, _MINFIN]:
                    ri[r, _MINFIN] = fin
        if ncomp > 0:
            ri[r, _PFPOS] = 0
        ri[r, _PFPOS] += ri[r, _PLANP]
        ri[r, _PLANC] = 0
        ri[r, _PLANP] = 0
    if ri[r, _ST] == _READY and gi[_GWAIT] > 0:
        _admit(r, ri, gi, pi, rq, qbuf, qm, seqs)
    if ri[r, _NRUN] > 0:
        if not busy:
            rf[r, _BUSYSINCE] = t
        _start_step(r, t, ri, rf, pi, pf, rq, seqs)
    else:
        rf[r, _END] = math.inf
        if busy:
            _close_busy(r, t, rf, gf)
        if ri[r, _ST] == _DRAINING:
            _slot_off(r, t, ri, rf, gi, gf)


@numba.njit(cache=True)
def _wake(t: float, ri: _Array, rf: _Array, gi: _Array, pi: _Array) -> None:
    """Give idle ready replicas (lowest index first) a step boundary at ``t``, enough of them to take the queue.

    The boundary comes after every other event at ``t``, so requests arriving together share a first step.
    """
    cover = 0
    for r in range(pi[_PR]):
        if cover >= gi[_GWAIT]:
            return
        if ri[r, _ST] == _READY and ri[r, _NRUN] == 0:
            if rf[r, _END] == math.inf:
                rf[r, _END] = t
                gi[_GFLAG] = 1
            cover += pi[_PMB]


@numba.njit(cache=True)
def _lose(r: int, t: float, ri: _Array, rf: _Array, gi: _Array, gf: _Array, pi: _Array, rq: _Array, rt: _Array,
          qbuf: _Array, qm: _Array, seqs: _Array) -> None:  # fmt: skip
    """Replica ``r`` is lost: its running sequences go back to the front of their queues; the slot goes off."""
    if ri[r, _ST] == _OFF:
        return
    n = ri[r, _NRUN]
    if n > 0:
        running = np.empty(n, np.int64)
        for i in range(ri[r, _PFN]):
            running[i] = seqs[r, _SPF, (ri[r, _PFH] + i) % pi[_PMB]]
        running[ri[r, _PFN] :] = seqs[r, _SDEC, : ri[r, _NDEC]]
        order = np.argsort(rq[running, _ADM])
        for i in range(n - 1, -1, -1):  # latest admitted first, so the earliest ends up at the very front
            q = running[order[i]]
            _push(q, rq, qbuf, qm, True)
            rt[q, _TTFT] = math.nan
        gi[_GWAIT] += n
        gi[_GRUN] -= n
        gi[_GRESTART] += n
        _close_busy(r, t, rf, gf)
    _slot_off(r, t, ri, rf, gi, gf)


@numba.njit(cache=True)
def _tick(t: float, ri: _Array, rf: _Array, gi: _Array, gf: _Array, pi: _Array, pf: _Array, pool: _Array) -> None:
    """One scaling evaluation at ``t``."""
    nr = pi[_PR]  # "no replica" below is nr, not -1: a literal argument would compile the callees twice
    mb = pi[_PMB]
    current = gi[_GREADY] + gi[_GWARM]
    if pi[_PPOLICY] == 0:
        desired = pi[_PMINR]
    elif pi[_PPOLICY] == 1:
        desired = math.ceil((gi[_GRUN] + gi[_GWAIT]) / (mb * pf[_PTU]) - 1e-9)
    else:
        target = pf[_PTQ] * mb
        if gi[_GWAIT] > target:
            desired = gi[_GREADY] + math.ceil(gi[_GWAIT] / target - 1e-9)
        elif gi[_GWAIT] == 0:
            desired = (gi[_GRUN] + mb - 1) // mb
        else:
            desired = current
    desired = max(pi[_PMINR], min(pi[_PMAXR], desired))
    desired = min(desired, max(gi[_GCAP] - gi[_GDRAIN], 0))
    if desired > current:
        gf[_FBELOW] = -1.0
        need = desired - current
        for r in range(nr):
            if need > 0 and ri[r, _ST] == _OFF:  # start slot r: from a warm standby when one is warm
                ready_at = t + pf[_PWARMUP]
                for k in range(pool.shape[0]):
                    if pool[k] <= t:
                        ready_at = t + pf[_PWARMSTART]
                        pool[k] = t + pf[_PWARMUP]  # its replacement warms up
                        break
                ri[r, _ST] = _WARMING
                gi[_GWARM] += 1
                rf[r, _PAIDSINCE] = t
                rf[r, _READYAT] = ready_at
                need -= 1
    elif desired < current:
        if gf[_FBELOW] < 0.0:
            gf[_FBELOW] = t
        if t - gf[_FBELOW] >= pf[_PSDOWN]:
            victim = nr
            if gi[_GWARM] > 0:
                latest = -math.inf
                for r in range(nr):
                    if ri[r, _ST] == _WARMING and rf[r, _PAIDSINCE] >= latest:
                        latest = rf[r, _PAIDSINCE]
                        victim = r
                _slot_off(victim, t, ri, rf, gi, gf)
            else:
                fewest = _NEVER
                for r in range(nr):
                    if ri[r, _ST] == _READY and ri[r, _NRUN] <= fewest:
                        fewest = ri[r, _NRUN]
                        victim = r
                if victim < nr:
                    ri[victim, _ST] = _DRAINING
                    gi[_GREADY] -= 1
                    gi[_GDRAIN] += 1
                    if ri[victim, _NRUN] == 0:
                        _slot_off(victim, t, ri, rf, gi, gf)
    else:
        gf[_FBELOW] = -1.0


@numba.njit(cache=True)
def _core(pi: _Array, pf: _Array, rq: _Array, rt: _Array, qm: _Array, spot: _Array, rng: _Array, avail_t: _Array,
          avail_cap: _Array, n_offered: int, window: float) -> tuple[_Array, _Array]:  # fmt: skip
    """Run the simulation (filling ``rt``); returns the timeline samples and the global sums."""
    n = pi[_PN]
    nr = pi[_PR]
    closed = pi[_PCLOSED] == 1
    qbuf = np.zeros(n, np.int64)
    ri = np.zeros((nr, 13), np.int64)
    rf = np.zeros((nr, 5), np.float64)
    seqs = np.zeros((nr, 3, pi[_PMB]), np.int64)
    gi = np.zeros(13, np.int64)
    gf = np.zeros(6, np.float64)
    pool = np.zeros(pi[_PPOOL], np.float64)  # when each warm standby is (or will be) warm
    gf[_FW] = window
    gf[_FBELOW] = -1.0
    rate = pf[_PSPOTRATE]
    for r in range(nr):
        ri[r, _MINFIN] = _NEVER
        rf[r, _END] = math.inf
        ri[r, _SPOT] = 1 if spot[r] else 0
        rf[r, _NEXTSPOT] = math.inf
        if spot[r] and rate > 0.0:
            rf[r, _NEXTSPOT] = -math.log(1.0 - _uniform(rng, r)) / rate
    cap = nr  # availability at t=0, then the initial fleet
    ai = 0
    while ai < avail_t.shape[0] and avail_t[ai] <= 0.0:
        cap = avail_cap[ai]
        ai += 1
    gi[_GCAP] = cap
    for r in range(min(pi[_PINIT], cap)):
        ri[r, _ST] = _READY
        gi[_GREADY] += 1
    if closed:  # every client sends its first request at t=0
        for q in range(n_offered):
            rt[q, _ARR] = 0.0
            _push(q, rq, qbuf, qm, False)
        gi[_GWAIT] = n_offered
        gi[_GNEXT] = n_offered
        _wake(0.0, ri, rf, gi, pi)
    open_ended = closed and window == math.inf
    horizon = window + pf[_PDRAIN]
    k_tick = 1
    k_sample = 0
    samples = np.zeros((1024, 5), np.float64)
    ns = 0
    t = 0.0
    while True:
        if open_ended:
            horizon = gf[_FLASTDONE] + pf[_PDRAIN]
        # the next global event; ties go to: availability, spot, ready, tick, arrival (then step ends, samples)
        tg = math.inf
        kind = 0
        gr = nr
        if ai < avail_t.shape[0]:
            tg = avail_t[ai]
        for r in range(nr):
            if rf[r, _NEXTSPOT] < tg:
                tg = rf[r, _NEXTSPOT]
                kind = 1
                gr = r
        for r in range(nr):
            if ri[r, _ST] == _WARMING and rf[r, _READYAT] < tg:
                tg = rf[r, _READYAT]
                kind = 2
                gr = r
        if k_tick * pf[_PINTERVAL] < tg:
            tg = k_tick * pf[_PINTERVAL]
            kind = 3
        if not closed and gi[_GNEXT] < n_offered and rt[gi[_GNEXT], _ARR] < tg:
            tg = rt[gi[_GNEXT], _ARR]
            kind = 4
        # the next step end (replica sr), and the next one on another replica
        ts = math.inf
        ts2 = math.inf
        sr = nr
        for r in range(nr):
            e = rf[r, _END]
            if e < ts:
                ts2 = ts
                ts = e
                sr = r
            elif e < ts2:
                ts2 = e
        t_sample = k_sample * pf[_PSAMPLE]
        if t_sample > gf[_FW]:
            t_sample = math.inf
        t_next = min(tg, ts, t_sample)
        if gi[_GRUN] == 0 and gi[_GWAIT] == 0 and (closed or gi[_GNEXT] == n_offered):  # no work left
            if open_ended:
                gf[_FW] = gf[_FLASTDONE]
                break
            if t_next > gf[_FW]:
                break
        if t_next > horizon:
            if open_ended:  # stalled: nothing finished for drain_s; the window ends with the last event
                gf[_FW] = t
            break
        if tg <= ts and tg <= t_sample:
            t = tg
            if kind == 0:  # availability: lose the most recently started replicas above the cap
                cap = avail_cap[ai]
                ai += 1
                gi[_GCAP] = cap
                while gi[_GREADY] + gi[_GWARM] + gi[_GDRAIN] > cap:
                    victim = nr
                    latest = -math.inf
                    for r in range(nr):
                        if ri[r, _ST] != _OFF and rf[r, _PAIDSINCE] >= latest:
                            latest = rf[r, _PAIDSINCE]
                            victim = r
                    _lose(victim, t, ri, rf, gi, gf, pi, rq, rt, qbuf, qm, seqs)
                    gi[_GLOSS] += 1
            elif kind == 1:
                rf[gr, _NEXTSPOT] = t - math.log(1.0 - _uniform(rng, gr)) / rate
                if ri[gr, _ST] != _OFF:
                    gi[_GINTR] += 1
                    _lose(gr, t, ri, rf, gi, gf, pi, rq, rt, qbuf, qm, seqs)
            elif kind == 2:
                ri[gr, _ST] = _READY
                gi[_GWARM] -= 1
                gi[_GREADY] += 1
            elif kind == 3:
                _tick(t, ri, rf, gi, gf, pi, pf, pool)
                k_tick += 1
            else:
                _push(gi[_GNEXT], rq, qbuf, qm, False)
                gi[_GNEXT] += 1
                gi[_GWAIT] += 1
            if gi[_GWAIT] > 0:
                _wake(t, ri, rf, gi, pi)
        elif ts <= t_sample:
            # Run replica sr's steps back to back while nothing else can happen in between. With an empty queue in
            # an open loop, other replicas' steps cannot affect it: only global events bound the run.
            limit = min(tg, t_sample, horizon)
            if closed or gi[_GWAIT] > 0 or pi[_PEXACT] == 1:
                limit = min(limit, ts2)
            gi[_GFLAG] = 0
            t = ts
            while True:
                _end_step(sr, t, ri, rf, gi, gf, pi, pf, rq, rt, qbuf, qm, seqs)
                if gi[_GWAIT] > 0:
                    _wake(t, ri, rf, gi, pi)
                t = rf[sr, _END]
                if gi[_GFLAG] != 0 or not t < limit:
                    break
        else:
            if ns == samples.shape[0]:
                bigger = np.zeros((2 * ns, 5), np.float64)
                bigger[:ns] = samples
                samples = bigger
            samples[ns, 0] = t_sample
            samples[ns, 1] = gi[_GREADY]
            samples[ns, 2] = gi[_GREADY] + gi[_GWARM] + gi[_GDRAIN] + pi[_PPOOL]
            samples[ns, 3] = gi[_GWAIT]
            samples[ns, 4] = gi[_GRUN]
            ns += 1
            k_sample += 1
    w = gf[_FW]
    for r in range(nr):
        if ri[r, _ST] != _OFF:
            if ri[r, _NRUN] > 0:
                _close_busy(r, w, rf, gf)
            _close_paid(r, w, ri, rf, gf)
    sums = np.array([gf[_FPAID], gf[_FBUSY], gf[_FSPOT], w, gi[_GSTEPS], gi[_GINTR], gi[_GRESTART], gi[_GLOSS],
                     gi[_GNEXT], t], np.float64)  # fmt: skip
    return samples[:ns], sums


def simulate(
    requests: Requests,
    engine: EngineSpec,
    scaling: ScalingSpec,
    disruptions: Disruptions = NO_DISRUPTIONS,
    *,
    sample_s: float = 10.0,
    drain_s: float | None = None,
) -> SimulationResult:
    """Simulate continuous batching of ``requests`` on a fleet of ``engine`` replicas (the model above).

    Args:
        requests: the workload (open loop: arrival times; closed loop: ``concurrency`` clients).
        engine: one replica's step-time coefficients and limits.
        scaling: the fleet's size limits and autoscaling policy.
        disruptions: spot interruptions and availability caps.
        sample_s: the timeline's sampling period in seconds.
        drain_s: seconds simulated past the window for queued work to finish (default 600).

    Returns:
        Per-request TTFT / e2e (nan when not reached), the timeline and the replica-seconds paid for.

    Raises:
        InvalidOptionError: inputs the simulator cannot run, e.g. a request larger than the KV cache.

    >>> import numpy as np
    >>> from unitcost.capacity.types import EngineSpec, Requests, ScalingSpec, StepCoefficients
    >>> reqs = Requests(np.array([0.0]), np.array([100]), np.array([5]), np.array([0]))
    >>> engine = EngineSpec(StepCoefficients(0.02, 0, 0, 0, 0), max_batch=4, kv_capacity_tokens=1000)
    >>> round(float(simulate(reqs, engine, ScalingSpec()).e2e_s[0]), 6)  # 5 steps of 20 ms
    0.1
    """
    return _run(requests, engine, scaling, disruptions, sample_s, drain_s, exact=False)


def _run(
    requests: Requests,
    engine: EngineSpec,
    scaling: ScalingSpec,
    disruptions: Disruptions,
    sample_s: float,
    drain_s: float | None,
    *,
    exact: bool,
) -> SimulationResult:
    """:func:`simulate`; ``exact`` turns off the back-to-back stepping of one replica between global events.

    The results must be the same either way (a test checks it): ``exact`` interleaves every step of every
    replica through the global event loop, the plain reading of the model.
    """
    validate(requests, engine, scaling, disruptions)
    if not (math.isfinite(sample_s) and sample_s > 0):
        raise invalid(f"sample_s must be > 0, got {sample_s}")
    drain = DEFAULT_DRAIN_S if drain_s is None else float(drain_s)
    if not (math.isfinite(drain) and drain >= 0):
        raise invalid(f"drain_s must be finite and >= 0, got {drain_s}")
    n = requests.count
    closed = requests.concurrency > 0
    duration = float(requests.duration_s)
    rq = np.zeros((n, 4), dtype=np.int64)
    rq[:, _IN] = requests.input_tokens
    rq[:, _OUT] = requests.output_tokens
    rq[:, _CLS] = requests.class_id
    rt = np.full((n, 3), math.nan)
    if closed:
        n_offered = min(requests.concurrency, n)  # the first wave; the clients send the later rows
        window = duration if duration > 0 else math.inf
    else:
        rt[:, _ARR] = requests.arrival_s
        n_offered = int(np.searchsorted(rt[:, _ARR], duration, side="right")) if duration > 0 else n
        window = duration if duration > 0 else float(rt[-1, _ARR])
    priority = requests.class_priority
    nclass = len(priority)
    qm = np.zeros((nclass, 5), dtype=np.int64)
    counts = np.bincount(rq[:, _CLS], minlength=nclass)
    qm[:, _QCAP] = np.maximum(counts, 1)
    qm[:, _QOFF] = np.cumsum(counts) - counts
    qm[:, _QORDER] = sorted(range(nclass), key=lambda c: (-priority[c], c))
    nr = scaling.max_replicas
    initial = scaling.min_replicas
    if scaling.policy != "fixed":
        initial = min(max(initial, scaling.initial_replicas), nr)
    spot = np.zeros(nr, dtype=np.bool_)
    if disruptions.spot:
        spot[:] = disruptions.spot
    rng = np.random.default_rng(disruptions.seed).integers(0, 2**63 - 1, size=nr, dtype=np.int64).astype(np.uint64)
    steps = sorted(disruptions.availability)
    avail_t = np.array([s[0] for s in steps], dtype=np.float64)
    avail_cap = np.array([s[1] for s in steps], dtype=np.int64)
    co = engine.step
    pi = np.array(
        [engine.max_batch, engine.max_batched_tokens, engine.kv_capacity_tokens, closed, n, nclass, nr,
         scaling.min_replicas, scaling.max_replicas, POLICIES[scaling.policy], scaling.warm_pool, exact, initial],
        dtype=np.int64,
    )  # fmt: skip
    pf = np.array(
        [co.overhead_s, co.compute_s_per_token, co.attention_s_per_context_token, co.weight_read_s,
         co.kv_read_s_per_token, co.comm_s_per_token, co.comm_latency_s,
         duration, scaling.interval_s, scaling.warmup_s, scaling.scale_down_after_s, scaling.warm_start_s,
         scaling.target_utilization, scaling.target_queue_per_replica, sample_s, drain,
         disruptions.spot_interruptions_per_hour / 3600.0],
        dtype=np.float64,
    )  # fmt: skip
    samples, sums = _core(pi, pf, rq, rt, qm, spot, rng, avail_t, avail_cap, n_offered, window)
    paid, busy, spot_s, w, nsteps, intr, restarted, losses, offered, until = (float(x) for x in sums)
    pool_s = scaling.warm_pool * w
    e2e = rt[:, _E2E].copy()
    return SimulationResult(
        ttft_s=rt[:, _TTFT].copy(),
        e2e_s=e2e,
        arrival_s=rt[:, _ARR].copy(),
        served=np.isfinite(e2e),
        timeline_s=samples[:, 0].copy(),
        ready_replicas=samples[:, 1].astype(np.int64),
        provisioned_replicas=samples[:, 2].astype(np.int64),
        waiting=samples[:, 3].astype(np.int64),
        running=samples[:, 4].astype(np.int64),
        replica_seconds=paid + pool_s,
        busy_replica_seconds=busy,
        spot_replica_seconds=spot_s,
        interruptions=int(intr),
        restarted_requests=int(restarted),
        horizon_s=w,
        extra={
            "window_s": w,
            "simulated_until_s": until,
            "steps": nsteps,
            "availability_losses": losses,
            "offered_requests": offered,
            "warm_pool_replica_seconds": pool_s,
        },
    )
