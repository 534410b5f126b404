"""The plain types the capacity planner passes between its parts: model, GPU, engine, scaling, workload.

Every time is in seconds, every size in tokens or bytes as named. These are inputs; the plan file
(:mod:`unitcost.capacity.plan`) builds them, the performance model (:mod:`unitcost.capacity.perf`) turns a
model x GPU x parallelism into :class:`StepCoefficients`, and the queueing screen and the simulator consume them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ModelSpec:
    """A transformer's shape: what the roofline needs."""

    name: str
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    parameters: float  # total parameters (weights to hold in memory)
    active_parameters: float  # parameters used per token (== parameters unless MoE)
    vocab_size: int = 128256


@dataclass(frozen=True)
class GpuSpec:
    """A GPU's datasheet figures: peak dense FLOP/s per precision, memory and its bandwidth, interconnect."""

    name: str
    memory_bytes: float
    hbm_bandwidth_bytes_s: float
    peak_flops: dict[str, float]  # precision -> dense FLOP/s (bf16, fp8, int4 where native)
    interconnect_bytes_s: float  # per-GPU one-direction bandwidth between GPUs of a replica (NVLink or PCIe)
    source: str = ""


@dataclass(frozen=True)
class StepCoefficients:
    """Seconds one engine step (one iteration of continuous batching) takes, as a function of its contents.

    ``step_s = overhead_s + comm_latency_s + comm_s_per_token * T
             + max(compute_s_per_token * T + attention_s_per_context_token * A,
                   weight_read_s + kv_read_s_per_token * K)``

    where ``T`` is the tokens processed in the step (prefill chunk tokens + one per decoding sequence),
    ``A`` the attention work in query-token x context-token pairs (for a decoding sequence its context length;
    for a prefill chunk of ``c`` tokens starting at position ``p``: ``c * (p + c / 2)``), and ``K`` the KV-cache
    tokens read (the sum of the context lengths of every sequence in the step).
    """

    overhead_s: float
    compute_s_per_token: float
    attention_s_per_context_token: float
    weight_read_s: float
    kv_read_s_per_token: float
    comm_s_per_token: float = 0.0
    comm_latency_s: float = 0.0

    def step_s(self, tokens: float, attention_pairs: float, kv_tokens_read: float) -> float:
        """Seconds for one step with these contents (the formula above).

        >>> StepCoefficients(0.001, 1e-6, 0.0, 0.004, 1e-8).step_s(100, 0, 1000)
        0.00501
        """
        compute = self.compute_s_per_token * tokens + self.attention_s_per_context_token * attention_pairs
        memory = self.weight_read_s + self.kv_read_s_per_token * kv_tokens_read
        return self.overhead_s + self.comm_latency_s + self.comm_s_per_token * tokens + max(compute, memory)


@dataclass(frozen=True)
class EngineSpec:
    """One replica (one model server over ``gpus`` GPUs): its step times and its limits."""

    step: StepCoefficients
    max_batch: int  # most sequences running at once
    kv_capacity_tokens: int  # KV-cache tokens that fit next to the weights
    max_batched_tokens: int = 8192  # token budget of one step (chunked prefill fills what decodes leave)
    gpus: int = 1


@dataclass(frozen=True)
class ScalingSpec:
    """How the replica count follows load.

    ``policy``: ``fixed`` (always ``min_replicas``), ``utilization`` (desired = ceil(busy slots / (max_batch *
    target_utilization)), busy slots = running + waiting sequences) or ``queue`` (desired = ready + ceil(waiting /
    target_queue_per_replica / max_batch) when waiting exceeds the target, scaled down when no queue).
    A new replica serves only ``warmup_s`` after it is asked for; one taken from the warm pool after
    ``warm_start_s``. A replica is removed after the desired count has stayed below the current one for
    ``scale_down_after_s``; it finishes its running sequences first.
    """

    min_replicas: int = 1
    max_replicas: int = 1
    initial_replicas: int = 0  # ready at t=0 (the fleet has been running); 0: min_replicas
    policy: str = "fixed"
    target_utilization: float = 0.7
    target_queue_per_replica: float = 1.0
    interval_s: float = 15.0
    warmup_s: float = 300.0
    scale_down_after_s: float = 600.0
    warm_pool: int = 0
    warm_start_s: float = 30.0


@dataclass(frozen=True)
class Disruptions:
    """Capacity taken away: spot interruptions and GPU availability drops.

    ``spot``: per replica slot (index 0 .. max_replicas-1) whether it runs on spot GPUs; a spot replica is
    interrupted at ``spot_interruptions_per_hour`` (Poisson, seeded); its sequences go back to the queue and
    start over; the slot provisions again (``warmup_s``) if still wanted. ``availability``: (time_s,
    most replicas available from then on) steps; replicas above the cap are lost like interrupted ones.
    """

    spot: tuple[bool, ...] = ()
    spot_interruptions_per_hour: float = 0.0
    availability: tuple[tuple[float, int], ...] = ()
    seed: int = 0


@dataclass(frozen=True)
class Requests:
    """The requests to serve, as arrays of one row per request (arrival order)."""

    arrival_s: np.ndarray  # float64, non-decreasing, seconds from the start (ignored when closed loop)
    input_tokens: np.ndarray  # int64 >= 1
    output_tokens: np.ndarray  # int64 >= 1
    class_id: np.ndarray  # int64 in 0..len(class_priority)-1
    class_priority: tuple[int, ...] = (0,)  # higher is served first
    concurrency: int = 0  # > 0: closed loop with this many clients, arrivals come from completions
    duration_s: float = 0.0  # the horizon; 0: until the last arrival

    @property
    def count(self) -> int:
        """Number of requests."""
        return int(self.input_tokens.shape[0])


@dataclass
class SimulationResult:
    """What the simulator measured: per request and over time."""

    ttft_s: np.ndarray  # per request; nan when never served within the horizon + drain
    e2e_s: np.ndarray  # per request; nan when not finished
    arrival_s: np.ndarray  # actual arrival times (closed loop: generated)
    served: np.ndarray  # bool: finished
    timeline_s: np.ndarray  # sample times
    ready_replicas: np.ndarray  # at each sample
    provisioned_replicas: np.ndarray  # ready + warming (paid for), at each sample
    waiting: np.ndarray  # sequences waiting for admission, at each sample
    running: np.ndarray  # sequences running, at each sample
    replica_seconds: float  # provisioned (ready + warming + draining) replica-seconds, all slots
    busy_replica_seconds: float  # replica-seconds with at least one sequence running
    spot_replica_seconds: float  # the part of replica_seconds on spot slots
    interruptions: int = 0
    restarted_requests: int = 0
    horizon_s: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)
