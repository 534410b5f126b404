"""Alert delivery: Slack-compatible JSON posted to webhooks, with a timeout and short retries, never raising.

A webhook (``alerts.webhooks`` in ``unitcost.yaml``: ``url``, ``timeout_s``, ``retries``) receives one POST per
batch of alert events. Each attempt has ``timeout_s``; connection errors, timeouts, 408, 429 and 5xx answers are
retried up to ``retries`` more times after 0.25 s, 0.5 s, 1 s, ... (capped at 4 s; a 429's ``Retry-After`` is
honoured up to the same cap). Other answers are final. A failure is logged as a warning and returned as a
:class:`DeliveryResult`: delivery never raises, so it can never block ingestion or the rule evaluation.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from unitcost.config import WebhookConfig

log = logging.getLogger("unitcost.alerts")

#: first wait between attempts (seconds); doubled after each retry
BACKOFF_S = 0.25
#: the longest wait between two attempts (seconds)
MAX_BACKOFF_S = 4.0
#: answers worth another attempt
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Slack accepts at most 50 blocks in a message
_MAX_ALERT_BLOCKS = 45
_ALERT_KEYS = ("rule", "kind", "scope", "status", "started_at", "ended_at", "impact_usd_per_month", "message")


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one POST: delivered or not, after how many attempts, and the last answer or error."""

    target: str
    ok: bool
    attempts: int
    status_code: int | None = None
    error: str | None = None
    elapsed_s: float = 0.0


def redact(url: str) -> str:
    """Return the URL without its path and query (webhook URLs carry their secret there).

    >>> redact("https://hooks.slack.com/services/T000/B000/XXXX")
    'https://hooks.slack.com/…'
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return "<invalid url>"
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


def _retryable(response: httpx.Response) -> bool:
    return response.status_code in RETRY_STATUSES or response.status_code >= 500


def _wait_s(attempt: int, backoff_s: float, response: httpx.Response | None) -> float:
    wait = backoff_s * 2 ** (attempt - 1)
    if response is not None and response.status_code == 429:
        retry_after = response.headers.get("retry-after", "").strip()
        if retry_after.isdigit():
            wait = max(wait, float(retry_after))
    return min(wait, MAX_BACKOFF_S)


def post_webhook(
    hook: WebhookConfig,
    payload: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    backoff_s: float = BACKOFF_S,
) -> DeliveryResult:
    """POST ``payload`` as JSON to the hook; return how it went (never raises).

    >>> hook = WebhookConfig(url="ftp://example.invalid/hook/secret", timeout_s=0.5, retries=2)
    >>> result = post_webhook(hook, {"text": "hello"})
    >>> result.ok, result.attempts, result.target, result.error
    (False, 1, 'ftp://example.invalid/…', "UnsupportedProtocol: Request URL has an unsupported protocol 'ftp://'.")
    """
    target = redact(hook.url)
    started = time.monotonic()
    attempts, status, error = 0, None, None
    own = client is None
    try:
        body = json.dumps(payload, default=str).encode()
        http = client or httpx.Client()
    except Exception as e:  # a payload that cannot be encoded, a client that cannot be made
        error = f"{type(e).__name__}: {e}"
        log.warning("webhook %s not delivered: %s", target, error)
        return DeliveryResult(target, False, 0, None, error, time.monotonic() - started)
    try:
        while True:
            attempts += 1
            response: httpx.Response | None = None
            try:
                response = http.post(
                    hook.url,
                    content=body,
                    headers={"Content-Type": "application/json", "User-Agent": "unitcost"},
                    timeout=hook.timeout_s,
                )
                status = response.status_code
                if response.is_success:
                    return DeliveryResult(target, True, attempts, status, None, time.monotonic() - started)
                error = f"HTTP {status}: {response.text[:200]}"
                retry = _retryable(response)
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:  # a hook that cannot work: no retry
                status, error, retry = None, f"{type(e).__name__}: {e}", False
            except httpx.TransportError as e:  # connection refused, timeout, reset, ...
                status, error, retry = None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__, True
            except Exception as e:  # anything else: not worth another attempt
                status, error, retry = None, f"{type(e).__name__}: {e}", False
            if not retry or attempts > hook.retries:
                break
            time.sleep(_wait_s(attempts, backoff_s, response))
    finally:
        if own:
            http.close()
    log.warning("webhook %s not delivered after %d attempt(s): %s", target, attempts, error)
    return DeliveryResult(target, False, attempts, status, error, time.monotonic() - started)


def _alert(event: Mapping[str, Any]) -> dict[str, Any]:
    """The alert dict of an event (a ``Finding.to_json()`` item or an ``alerts`` row as a dict)."""
    doc = {k: event.get(k) for k in _ALERT_KEYS}
    doc["ended_at"] = doc["ended_at"] or event.get("resolved_at")
    scope = doc["scope"] or {}
    doc["scope"] = dict(json.loads(scope) if isinstance(scope, str) else scope)  # a stored row holds JSON text
    doc["status"] = doc["status"] or ("resolved" if doc["ended_at"] else "firing")
    for k in ("started_at", "ended_at"):
        value = doc[k]
        if value is not None and not isinstance(value, str):
            doc[k] = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return doc


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _scope_text(scope: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scope.items()) or "all"


def _summary(alerts: list[dict[str, Any]]) -> str:
    firing = [a for a in alerts if a["status"] == "firing"]
    parts = []
    if firing:
        parts.append(f"{len(firing)} alert{'s' if len(firing) != 1 else ''} firing")
    if len(alerts) > len(firing):
        parts.append(f"{len(alerts) - len(firing)} resolved")
    impact = sum(a["impact_usd_per_month"] or 0 for a in firing)
    text = "unitcost: " + (", ".join(parts) or "no alerts")
    return text + (f" (impact ~{_usd(impact)}/month)" if impact >= 0.5 else "")


def _block(alert: dict[str, Any]) -> dict[str, Any]:
    icon = ":rotating_light:" if alert["status"] == "firing" else ":white_check_mark:"
    lines = [
        f"{icon} *{alert['status'].upper()}* `{alert['rule']}` ({_scope_text(alert['scope'])})",
        str(alert["message"] or ""),
    ]
    facts = [f"since {alert['started_at']}"] if alert["started_at"] else []
    if alert["impact_usd_per_month"]:
        facts.insert(0, f"impact ~{_usd(alert['impact_usd_per_month'])}/month")
    if facts:
        lines.append("_" + " · ".join(facts) + "_")
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900]}}


def slack_payload(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Return the Slack-compatible message for alert events: ``text``, ``blocks`` and the ``alerts`` themselves.

    Each event is a mapping with ``rule``, ``kind``, ``scope``, ``status`` (``firing``/``resolved``),
    ``started_at``, ``impact_usd_per_month`` and ``message`` (e.g. ``Finding.to_json()``).

    >>> p = slack_payload([{"rule": "budget:total", "kind": "budget", "scope": {}, "status": "firing",
    ...                     "started_at": "2026-10-24T00:00:00", "impact_usd_per_month": 5300.0,
    ...                     "message": "Budget total: projected $55,300"}])
    >>> p["text"]
    'unitcost: 1 alert firing (impact ~$5,300/month)'
    >>> p["blocks"][1]["text"]["text"].splitlines()[0]
    ':rotating_light: *FIRING* `budget:total` (all)'
    """
    alerts = [_alert(e) for e in events]
    alerts.sort(key=lambda a: (a["status"] != "firing", -(a["impact_usd_per_month"] or 0)))
    text = _summary(alerts)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}]
    blocks += [_block(a) for a in alerts[:_MAX_ALERT_BLOCKS]]
    if len(alerts) > _MAX_ALERT_BLOCKS:
        more = len(alerts) - _MAX_ALERT_BLOCKS
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {more} more"}]})
    return {"text": text, "blocks": blocks, "alerts": alerts}


def deliver(
    hooks: Iterable[WebhookConfig],
    events: Iterable[Mapping[str, Any]],
    *,
    client: httpx.Client | None = None,
    backoff_s: float = BACKOFF_S,
) -> list[DeliveryResult]:
    """Post the events to every hook; return one result per hook (none when there are no events). Never raises.

    >>> deliver([WebhookConfig(url="http://127.0.0.1:9/hook", retries=0)], [])
    []
    """
    try:
        events = list(events)
        if not events:
            return []
        payload = slack_payload(events)
    except Exception as e:  # malformed events: log, deliver nothing
        log.warning("alerts not delivered: cannot build the message: %s: %s", type(e).__name__, e)
        return [DeliveryResult(redact(h.url), False, 0, None, f"{type(e).__name__}: {e}") for h in hooks]
    return [post_webhook(h, payload, client=client, backoff_s=backoff_s) for h in hooks]
