"""What every alert rule returns: findings, each an episode of a condition with its scope and impact.

A rule looks at the data over ``[since, at)`` and returns one :class:`Finding` per episode it sees: when the
condition started, when it ended (``None`` while it still holds at ``at``), and what it costs. The life cycle
(``unitcost.alerts.state``) turns findings into stored alerts that fire once, update while they last and resolve
when they end; ``watch --since`` lists the findings themselves (every alert that would have fired).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from unitcost.config import Config
from unitcost.store import Store

if TYPE_CHECKING:
    from unitcost.alerts.spend import SpendSeries

Kind = Literal["budget", "anomaly", "drift", "deployment_regression"]
KINDS: tuple[Kind, ...] = ("budget", "anomaly", "drift", "deployment_regression")


@dataclass(frozen=True)
class Finding:
    """One episode of an alert condition.

    >>> f = Finding("drift:cache_hit_rate", "drift", {"feature": "search"}, dt.datetime(2026, 10, 22), None,
    ...             120.0, "cache hit rate fell")
    >>> f.key
    'drift:cache_hit_rate {"feature": "search"}'
    """

    rule: str
    kind: Kind
    scope: dict[str, str]
    started_at: dt.datetime
    #: None while the condition still holds at the evaluation time
    ended_at: dt.datetime | None
    impact_usd_per_month: float | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identity across evaluations: the rule and the scope (one open alert per key)."""
        return f"{self.rule} {json.dumps(self.scope, sort_keys=True)}"

    @property
    def active(self) -> bool:
        return self.ended_at is None

    def to_json(self, status: str | None = None) -> dict[str, Any]:
        """Return the ``watch --json`` item (docs/alerts.md)."""
        doc = asdict(self)
        doc["status"] = status or ("firing" if self.active else "resolved")
        doc["started_at"] = self.started_at.isoformat()
        doc["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        return doc


@dataclass(frozen=True)
class RuleContext:
    """What a rule evaluates: the data over [since, at) (``since`` already includes the rule's look-back)."""

    store: Store
    config: Config
    since: dt.datetime
    at: dt.datetime
    #: token cost per hour, shared by the rules of one evaluation (None: a rule scans for itself)
    spend: SpendSeries | None = None

    def spend_series(self) -> SpendSeries:
        """The shared spend series, or one of this rule's own."""
        from unitcost.alerts.spend import SpendSeries

        return self.spend or SpendSeries(self.store, self.config, self.at)


#: a rule: the findings over the context's window
Rule = Callable[[RuleContext], list[Finding]]
