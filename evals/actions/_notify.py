"""Delivering an incident to the contract's channels.

Delivery never raises: a failed delivery is reported in words so it can be recorded, and the
caller carries on.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from evals.contract import WebhookChannel

__all__ = ["deliver", "post_webhook"]

_ATTEMPTS = 3


def _label(channel: WebhookChannel) -> str:
    # Never the URL itself when it came from the environment: it is a secret.
    return f"webhook ${channel.url_env}" if channel.url_env else f"webhook {channel.url}"


def post_webhook(
    channel: WebhookChannel,
    payload: dict[str, Any],
    attempts: int = _ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """POST ``payload`` as JSON, retrying transient failures with backoff.

    Returns:
        What happened, safe to store: ``webhook $NAME: delivered (HTTP 200)`` or why not.
    """
    label = _label(channel)
    url = channel.url or os.environ.get(channel.url_env or "", "")
    if not url:
        return f"{label}: skipped: the environment variable is not set"
    body = json.dumps(payload, default=str).encode("utf-8")
    last = ""
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=channel.timeout_s) as response:
                return f"{label}: delivered (HTTP {response.status})"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(exc).__name__}: {reason}"
        if attempt < attempts:
            sleep(0.5 * 2 ** (attempt - 1))
    return f"{label}: not delivered after {attempt} attempt(s): {last}"


def deliver(channels: Sequence[WebhookChannel], payload: dict[str, Any]) -> list[str]:
    """Send ``payload`` to every channel; one delivery result per channel."""
    return [post_webhook(channel, payload) for channel in channels]
