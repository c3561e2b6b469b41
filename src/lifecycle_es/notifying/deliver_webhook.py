"""Delivering an alert to a webhook: a JSON POST signed with HMAC-SHA256 over the body.

Headers: ``Idempotency-Key`` (the alert's stable id: the same on every attempt),
``X-Lifecycle-Signature: sha256=<hex>`` (HMAC-SHA256 of the exact body bytes under the
channel's secret), ``Content-Type: application/json``. A 2xx answer is delivered; 408, 429 and
5xx, a timeout or a lost connection are retried; any other answer (a redirect too) is not.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from lifecycle_es.notifying.delivery import DeliveryFailed, header_id
from lifecycle_es.stores.url import redact

SIGNATURE_HEADER = "X-Lifecycle-Signature"
_RETRIED = {408, 425, 429}


def signature(secret: str, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as an error: a signed alert goes where it was told


_OPENER = urllib.request.build_opener(_NoRedirect)


def _without_user(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its ``user:password@`` part, which becomes a Basic authorization."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.netloc.rpartition("@")[2]
    user = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return (urlunsplit(parts._replace(netloc=host)),
            {"Authorization": "Basic " + base64.b64encode(user).decode()})


def post(url: str, alert_id: str, body: bytes, secret: str, timeout: float) -> int:
    """POST ``body`` to ``url``; the answer's status, or :class:`DeliveryFailed` (its text
    shows the URL with any password hidden)."""
    target, auth = _without_user(url)
    request = urllib.request.Request(target, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "lifecycle-es-notifier",
        "Idempotency-Key": header_id(alert_id), SIGNATURE_HEADER: signature(secret, body),
        **auth})
    shown = redact(url)
    try:
        with _OPENER.open(request, timeout=timeout) as answer:
            answer.read(65536)
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        code = exc.code
        raise DeliveryFailed(f"{shown} answered {code} {exc.reason}",
                             permanent=not (code >= 500 or code in _RETRIED)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DeliveryFailed(redact(f"{shown}: {type(reason).__name__}: {reason}", url)) \
            from None
