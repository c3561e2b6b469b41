"""Alerts of gaps by webhook and e-mail, from an outbox that loses nothing and sends nothing
twice (docs/notifications.md): ``config`` (the TOML file), ``evaluate`` (which alerts the
open gaps call for), ``outbox`` (the tables), ``render`` (what an alert says),
``deliver_webhook`` / ``deliver_email``, ``sender`` (the loop), ``thread`` (in a server)."""
