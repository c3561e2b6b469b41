"""What a failed delivery says: retry later, or give up at once."""

from __future__ import annotations

from urllib.parse import quote

#: characters of an alert id kept as they are in a header (the rest percent-encoded, UTF-8)
_HEADER_SAFE = "/:@!$&'()*+,;=-._~"


class DeliveryFailed(Exception):
    """A delivery that did not go through: ``permanent`` ones (a 4xx answer, a refused
    recipient, no address) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def header_id(alert_id: str) -> str:
    """The alert id as a header value: printable ASCII as is, the rest percent-encoded."""
    return quote(alert_id, safe=_HEADER_SAFE)
