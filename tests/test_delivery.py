"""Webhook delivery against a real HTTP receiver on 127.0.0.1: success, retries, timeouts, unreachable hooks."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from unitcost.alerts.delivery import deliver, post_webhook, slack_payload
from unitcost.alerts.model import Finding
from unitcost.config import WebhookConfig

FAST = 0.01  # backoff between attempts in these tests (seconds)

FIRING = Finding(
    "budget:monthly-total",
    "budget",
    {},
    dt.datetime(2026, 10, 24),
    None,
    5300.0,
    "Budget monthly-total: $41,200 of $50,000 spent by Oct 24; projected $55,300 by Oct 31, over by $5,300",
).to_json()
RESOLVED = {
    "rule": "drift:cache_hit_rate",
    "kind": "drift",
    "scope": {"feature": "search"},
    "status": "resolved",
    "started_at": "2026-10-22T00:00:00",
    "ended_at": "2026-10-23T00:00:00",
    "impact_usd_per_month": 120.0,
    "message": "cache hit rate fell from 50% to 10%",
}


class Receiver:
    """Records every body it receives; ``answer(n)`` gives the n-th request's status code (None: never answer)."""

    def __init__(self, answer: Callable[[int], int | None]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()
        self.answer = answer


@contextmanager
def receiver(answer: Callable[[int], int | None] = lambda n: 200) -> Iterator[tuple[str, Receiver]]:
    state = Receiver(answer)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.bodies.append(json.loads(body))
            state.headers.append(dict(self.headers))
            status = state.answer(len(state.bodies))
            if status is None:
                state.release.wait(10)  # hold the connection without answering
                return
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T000/SECRET", state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_delivers_the_slack_payload() -> None:
    with receiver() as (url, got):
        [result] = deliver([WebhookConfig(url=url)], [FIRING, RESOLVED], backoff_s=FAST)
    assert (result.ok, result.attempts, result.status_code, result.error) == (True, 1, 200, None)
    assert result.target.endswith("/…") and "SECRET" not in result.target
    [body] = got.bodies
    assert got.headers[0]["Content-Type"] == "application/json"
    assert body["text"] == "unitcost: 1 alert firing, 1 resolved (impact ~$5,300/month)"
    assert [a["rule"] for a in body["alerts"]] == ["budget:monthly-total", "drift:cache_hit_rate"]
    alert = body["alerts"][0]
    assert alert == {
        "rule": "budget:monthly-total",
        "kind": "budget",
        "scope": {},
        "status": "firing",
        "started_at": "2026-10-24T00:00:00",
        "ended_at": None,
        "impact_usd_per_month": 5300.0,
        "message": FIRING["message"],
    }
    assert [b["type"] for b in body["blocks"]] == ["section", "section", "section"]
    assert all(b["text"]["type"] == "mrkdwn" for b in body["blocks"])
    assert "`drift:cache_hit_rate` (feature=search)" in body["blocks"][2]["text"]["text"]


def test_retries_a_500_then_succeeds() -> None:
    with receiver(lambda n: 500 if n == 1 else 200) as (url, got):
        result = post_webhook(WebhookConfig(url=url, retries=3), {"text": "x"}, backoff_s=FAST)
    assert (result.ok, result.attempts, result.status_code) == (True, 2, 200)
    assert got.bodies == [{"text": "x"}, {"text": "x"}]


def test_gives_up_after_the_retries_and_does_not_retry_a_client_error() -> None:
    with receiver(lambda n: 503) as (url, got):
        result = post_webhook(WebhookConfig(url=url, retries=2), {"text": "x"}, backoff_s=FAST)
    assert (result.ok, result.attempts, result.status_code) == (False, 3, 503)
    assert result.error is not None and result.error.startswith("HTTP 503")
    assert len(got.bodies) == 3
    with receiver(lambda n: 404) as (url, got):
        result = post_webhook(WebhookConfig(url=url, retries=2), {"text": "x"}, backoff_s=FAST)
    assert (result.ok, result.attempts, result.status_code) == (False, 1, 404)
    assert len(got.bodies) == 1


def test_a_receiver_that_never_answers_times_out_on_every_attempt() -> None:
    with receiver(lambda n: None) as (url, got):
        started = time.monotonic()
        [result] = deliver([WebhookConfig(url=url, timeout_s=0.3, retries=1)], [FIRING], backoff_s=FAST)
        elapsed = time.monotonic() - started
    assert (result.ok, result.attempts, result.status_code) == (False, 2, None)
    assert result.error is not None and "Timeout" in result.error
    assert len(got.bodies) == 2
    assert 0.6 <= elapsed < 3


def test_unreachable_and_invalid_hooks_fail_quickly_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    hooks = [
        WebhookConfig(url=f"http://127.0.0.1:{unused_port()}/hook", timeout_s=1, retries=2),
        WebhookConfig(url="not a url at all", retries=2),
    ]
    with receiver() as (url, got):
        started = time.monotonic()
        results = deliver([*hooks, WebhookConfig(url=url)], [FIRING], backoff_s=FAST)
        elapsed = time.monotonic() - started
    refused, invalid, good = results
    assert (refused.ok, refused.attempts, refused.status_code) == (False, 3, None)
    assert refused.error is not None and "ConnectError" in refused.error
    assert (invalid.ok, invalid.attempts) == (False, 1)
    assert good.ok and len(got.bodies) == 1  # a failing hook does not stop the others
    assert elapsed < 3
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2 and all("not delivered" in w for w in warnings)


def test_no_events_posts_nothing() -> None:
    with receiver() as (url, got):
        assert deliver([WebhookConfig(url=url)], []) == []
    assert got.bodies == []


def test_a_stored_alert_row_is_accepted_as_an_event() -> None:
    row = {**RESOLVED, "scope": '{"feature": "search"}', "ended_at": None, "resolved_at": dt.datetime(2026, 10, 23)}
    del row["status"]
    [alert] = slack_payload([row])["alerts"]
    assert alert == {**RESOLVED, "ended_at": "2026-10-23T00:00:00"}  # resolved, as it has ended


def test_payload_caps_blocks_and_sorts_firing_first_by_impact() -> None:
    events = [{**FIRING, "rule": f"budget:b{i}", "impact_usd_per_month": float(i)} for i in range(60)]
    payload = slack_payload([RESOLVED, *events])
    assert len(payload["blocks"]) <= 50
    assert payload["blocks"][-1]["elements"][0]["text"] == "…and 16 more"
    assert [a["rule"] for a in payload["alerts"][:2]] == ["budget:b59", "budget:b58"]
    assert payload["alerts"][-1]["status"] == "resolved"
    assert len(payload["alerts"]) == 61
    json.dumps(payload)  # JSON-ready as is
