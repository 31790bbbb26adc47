"""Delivering an incident to the contract's channels.

Delivery never raises: a failed delivery is reported in words so it can be recorded, and the
caller carries on. Secret values (webhook URLs and SMTP credentials from the environment) never
appear in those words.
"""

from __future__ import annotations

import json
import os
import smtplib
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from typing import Any

from evals._urls import url_problem
from evals.contract import SEVERITIES, Channel, EmailChannel, EventChannel, WebhookChannel

__all__ = ["PENDING_EVENT", "deliver", "post_json", "post_webhook", "send_email", "wants"]

PENDING_EVENT = "event: to be emitted by the Prefect run"
"""The note an event channel leaves; the Prefect flow that publishes the decision emits it."""

_ATTEMPTS = 3


def _label(channel: WebhookChannel) -> str:
    # Never the URL itself when it came from the environment: it is a secret.
    return f"webhook ${channel.url_env}" if channel.url_env else f"webhook {channel.url}"


def post_json(
    url: str,
    payload: dict[str, Any],
    label: str,
    timeout_s: float,
    attempts: int = _ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[bool, str]:
    """POST ``payload`` as JSON, retrying transient failures with backoff.

    Returns:
        Whether it was delivered, and what happened in words safe to store (never the URL:
        it may be a secret from the environment).
    """
    problem = url_problem(url)
    if problem is not None:
        return False, f"{label}: not delivered: {problem}"
    body = json.dumps(payload, default=str).encode("utf-8")
    last = ""
    attempt = 0
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return True, f"{label}: delivered (HTTP {response.status})"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{type(exc).__name__}: {reason}"
        except Exception as exc:  # delivery never raises: a failure is recorded, not fatal
            last = f"{type(exc).__name__}: {exc}"
            break
        if attempt < attempts:
            sleep(0.5 * 2 ** (attempt - 1))
    return False, f"{label}: not delivered after {attempt} attempt(s): {last}"


def post_webhook(
    channel: WebhookChannel,
    payload: dict[str, Any],
    attempts: int = _ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """POST an incident to a webhook channel; what happened, in words safe to store."""
    label = _label(channel)
    url = channel.url or os.environ.get(channel.url_env or "", "")
    if not url:
        return f"{label}: skipped: the environment variable is not set"
    return post_json(url, payload, label, channel.timeout_s, attempts, sleep)[1]


def send_email(
    channel: EmailChannel,
    payload: dict[str, Any],
    attempts: int = _ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Send the incident as a plain-text email; what happened, in words safe to store."""
    label = f"email to {', '.join(channel.to)}"
    message = EmailMessage()
    message["Subject"] = str(payload.get("text", "impactgate incident")).splitlines()[0][:200]
    message["From"] = channel.sender
    message["To"] = ", ".join(channel.to)
    message.set_content(
        str(payload.get("text", "")) + "\n\n" + json.dumps(payload, indent=2, default=str)
    )
    user = os.environ.get(channel.username_env or "") if channel.username_env else None
    password = os.environ.get(channel.password_env or "") if channel.password_env else None
    if (channel.username_env and not user) or (channel.password_env and not password):
        return f"{label}: skipped: the SMTP credentials' environment variables are not set"
    last = ""
    attempt = 0
    for attempt in range(1, attempts + 1):
        try:
            with smtplib.SMTP(
                channel.smtp_host, channel.smtp_port, timeout=channel.timeout_s
            ) as smtp:
                if channel.starttls:
                    smtp.starttls()
                if user and password:
                    smtp.login(user, password)
                smtp.send_message(message)
            return f"{label}: sent via {channel.smtp_host}:{channel.smtp_port}"
        except smtplib.SMTPAuthenticationError as exc:
            last = f"authentication refused ({exc.smtp_code})"
            break
        except (smtplib.SMTPException, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # delivery never raises: a failure is recorded, not fatal
            last = f"{type(exc).__name__}: {exc}"
            break
        if attempt < attempts:
            sleep(0.5 * 2 ** (attempt - 1))
    return f"{label}: not sent after {attempt} attempt(s): {last}"


def wants(channel: Channel, severity: str) -> bool:
    """Whether a channel takes incidents of this severity."""
    return SEVERITIES.index(severity) >= SEVERITIES.index(channel.min_severity)  # type: ignore[arg-type,unused-ignore]


def deliver(
    channels: Sequence[Channel], payload: dict[str, Any], severity: str = "high"
) -> list[str]:
    """Send ``payload`` to every channel that takes this severity; one result per channel.

    Event channels are left to the orchestrator (only a Prefect run can emit a Prefect event):
    they are reported as pending here.
    """
    results = []
    for channel in channels:
        if not wants(channel, severity):
            continue
        if isinstance(channel, WebhookChannel):
            results.append(post_webhook(channel, payload))
        elif isinstance(channel, EmailChannel):
            results.append(send_email(channel, payload))
        elif isinstance(channel, EventChannel):
            results.append(PENDING_EVENT)
    return results
