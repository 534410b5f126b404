"""What :func:`unitcost.capacity.simulator.simulate` accepts: its inputs checked before the compiled core runs.

Every refusal names the field and, for per-request arrays, the first offending row.
"""

from __future__ import annotations

import math

import numpy as np

from unitcost.capacity.types import Disruptions, EngineSpec, Requests, ScalingSpec
from unitcost.errors import InvalidOptionError

#: the scaling policies the simulator runs, with their codes in the compiled core
POLICIES = {"fixed": 0, "utilization": 1, "queue": 2}


def invalid(message: str) -> InvalidOptionError:
    """The error for an input the simulator refuses."""
    return InvalidOptionError(f"simulate: {message}")


def validate(requests: Requests, engine: EngineSpec, scaling: ScalingSpec, disruptions: Disruptions) -> None:
    """Raise :class:`InvalidOptionError` on inputs the simulator cannot run (naming the offending row)."""
    n = requests.count
    if n < 1:
        raise invalid("no requests to simulate")
    for name in ("arrival_s", "output_tokens", "class_id"):
        arr = getattr(requests, name)
        if np.ndim(arr) != 1 or len(arr) != n:
            raise invalid(f"requests.{name} has shape {np.shape(arr)}, expected ({n},) like input_tokens")
    if engine.max_batch < 1:
        raise invalid(f"engine.max_batch must be >= 1, got {engine.max_batch}")
    if engine.kv_capacity_tokens < 1:
        raise invalid(f"engine.kv_capacity_tokens must be >= 1, got {engine.kv_capacity_tokens}")
    if engine.max_batched_tokens < engine.max_batch:
        raise invalid(
            f"engine.max_batched_tokens ({engine.max_batched_tokens}) must be >= max_batch ({engine.max_batch}): "
            "every running sequence decodes one token per step"
        )
    coeffs = engine.step
    values = [getattr(coeffs, f) for f in coeffs.__dataclass_fields__]
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise invalid(f"engine.step coefficients must be finite and >= 0, got {coeffs}")
    if coeffs.step_s(1, 0, 0) <= 0:
        raise invalid("engine.step gives zero-length steps: set overhead_s or weight_read_s > 0")
    inp, out, cls = requests.input_tokens, requests.output_tokens, requests.class_id
    for name, a in (("input_tokens", inp), ("output_tokens", out)):
        bad = np.flatnonzero(a < 1)
        if bad.size:
            raise invalid(f"requests.{name} must be >= 1: row {int(bad[0])} has {int(a[bad[0]])}")
    too_big = np.flatnonzero(inp + out > engine.kv_capacity_tokens)
    if too_big.size:
        i = int(too_big[0])
        raise invalid(
            f"row {i} needs {int(inp[i])} input + {int(out[i])} output = {int(inp[i] + out[i])} KV tokens, more than "
            f"engine.kv_capacity_tokens ({engine.kv_capacity_tokens}): it could never be served "
            f"({too_big.size} such rows)"
        )
    nclass = len(requests.class_priority)
    bad = np.flatnonzero((cls < 0) | (cls >= nclass))
    if bad.size:
        raise invalid(f"requests.class_id must be in 0..{nclass - 1}: row {int(bad[0])} has {int(cls[bad[0]])}")
    if requests.concurrency < 0:
        raise invalid(f"requests.concurrency must be >= 0, got {requests.concurrency}")
    if not (math.isfinite(requests.duration_s) and requests.duration_s >= 0):
        raise invalid(f"requests.duration_s must be finite and >= 0, got {requests.duration_s}")
    if requests.concurrency == 0:
        t = requests.arrival_s
        bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
        if bad.size:
            raise invalid(f"requests.arrival_s must be finite and >= 0: row {int(bad[0])} has {t[bad[0]]}")
        bad = np.flatnonzero(np.diff(t) < 0)
        if bad.size:
            i = int(bad[0]) + 1
            earlier = f"row {i} ({t[i]}) arrives before row {i - 1} ({t[i - 1]})"
            raise invalid(f"requests.arrival_s must be sorted: {earlier}")
    if scaling.policy not in POLICIES:
        raise invalid(f"scaling.policy must be one of {sorted(POLICIES)}, got {scaling.policy!r}")
    if scaling.min_replicas < 0 or scaling.max_replicas < max(1, scaling.min_replicas):
        raise invalid(
            f"need 0 <= min_replicas <= max_replicas and max_replicas >= 1, "
            f"got {scaling.min_replicas} and {scaling.max_replicas}"
        )
    for name in ("interval_s", "target_utilization", "target_queue_per_replica"):
        if not getattr(scaling, name) > 0:
            raise invalid(f"scaling.{name} must be > 0, got {getattr(scaling, name)}")
    for name in ("warmup_s", "scale_down_after_s", "warm_start_s"):
        if not (math.isfinite(getattr(scaling, name)) and getattr(scaling, name) >= 0):
            raise invalid(f"scaling.{name} must be finite and >= 0, got {getattr(scaling, name)}")
    if scaling.initial_replicas < 0:
        raise invalid(f"scaling.initial_replicas must be >= 0, got {scaling.initial_replicas}")
    if scaling.warm_pool < 0:
        raise invalid(f"scaling.warm_pool must be >= 0, got {scaling.warm_pool}")
    if disruptions.spot and len(disruptions.spot) != scaling.max_replicas:
        raise invalid(
            f"disruptions.spot has {len(disruptions.spot)} entries, expected one per slot "
            f"(max_replicas = {scaling.max_replicas}) or none"
        )
    if not disruptions.spot_interruptions_per_hour >= 0:
        raise invalid(f"spot_interruptions_per_hour must be >= 0, got {disruptions.spot_interruptions_per_hour}")
    for time_s, cap in disruptions.availability:
        if not math.isfinite(time_s) or cap < 0:
            raise invalid(f"disruptions.availability step ({time_s}, {cap}) needs a finite time and a cap >= 0")
