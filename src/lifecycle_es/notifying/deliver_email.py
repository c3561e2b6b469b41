"""Delivering an alert by e-mail: SMTP with STARTTLS (unless the configuration turns it off),
the user and password from environment variables, ``Message-ID`` from the alert's id.

A 5xx answer (a refused sender or recipient, a refused message) is not retried; a 4xx
answer, a timeout or a lost connection is.
"""

from __future__ import annotations

import smtplib
import ssl
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

from lifecycle_es.notifying.config import Smtp, secret
from lifecycle_es.notifying.delivery import DeliveryFailed, header_id

#: lines up to SMTP's limit: a Message-ID of a long alert id stays on one line
_POLICY = policy.SMTP.clone(max_line_length=998)
#: the domain part of every Message-ID
MESSAGE_ID_DOMAIN = "lifecycle-es"


def message_id(alert_id: str) -> str:
    """``<id@lifecycle-es>``, the id percent-encoded so that it is one dot-atom."""
    from urllib.parse import quote

    return f"<{quote(alert_id, safe='')}@{MESSAGE_ID_DOMAIN}>"


def send(smtp: Smtp, to: list[str], subject: str, text: str, alert_id: str,
         timeout: float) -> None:
    """Send one message to ``to``; :class:`DeliveryFailed` when it did not go."""
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = smtp.from_address
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = message_id(alert_id)
    msg["X-Lifecycle-Alert-Id"] = header_id(alert_id)
    msg.set_content(text)
    where = f"smtp {smtp.host}:{smtp.port}"
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as client:
            client.ehlo()
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
                client.ehlo()
            if smtp.username_env is not None:
                password = secret(smtp.password_env) if smtp.password_env else ""
                client.login(secret(smtp.username_env), password)
            client.send_message(msg)
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        raise DeliveryFailed(f"{where} refused the recipients ({', '.join(map(str, codes))})",
                             permanent=all(code >= 500 for code in codes)) from None
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        raise DeliveryFailed(f"{where} answered {exc.smtp_code} {said.splitlines()[0]}",
                             permanent=exc.smtp_code >= 500) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryFailed(f"{where}: {type(exc).__name__}: {exc}") from None
