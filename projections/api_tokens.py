"""api_tokens: one row per token of the HTTP API: its scope, whether it may act for others,
whether revoked, since when.

``lifecycle-es tokens list`` reads it; the token's hash is never in it (a request loads the
token itself, ``engine.token_for(secret)``).
"""

from __future__ import annotations

from lifecycle_es.domain import ApiToken
from lifecycle_es.projection import Projection, Table, Tables, on


class ApiTokens(Projection):
    name = "api_tokens"
    version = 1
    rebuild_cost = 0.1  # relative, for rebuild --jobs: a row per token
    replay_by_aggregate = True  # handlers touch only the row of the event's own token
    description = "per API token: scope, may act for others, revoked, who issued it and when"
    tables = (
        Table(
            "api_tokens",
            key=("name",),
            partition=None,
            columns={
                "name": "text",
                "scope": "text",
                "act_for_others": "bool",
                "revoked": "bool",
                "added_at": "timestamp",
                "added_by": "text",
                "revoked_at": "timestamp",
                "revoked_by": "text",
            },
            doc={
                "name": "the integration's name (the actor of what the token records)",
                "scope": "read (GET endpoints) or write (also POST /api/v1/commands)",
                "act_for_others": "the token may record commands naming another actor",
                "revoked": "the token is refused",
                "added_at": "when the token was issued",
                "added_by": "who issued it",
                "revoked_at": "when it was revoked",
                "revoked_by": "who revoked it",
            },
        ),
    )

    @on(ApiToken.Added)
    def added(self, e: ApiToken.Added, db: Tables) -> None:
        db["api_tokens"].put({"name": e.token, "scope": e.scope,
                              "act_for_others": e.act_for_others, "revoked": False,
                              "added_at": e.occurred_at, "added_by": e.actor,
                              "revoked_at": None, "revoked_by": None})

    @on(ApiToken.Revoked)
    def revoked(self, e: ApiToken.Revoked, db: Tables) -> None:
        db["api_tokens"].update(e.token, revoked=True, revoked_at=e.occurred_at,
                                revoked_by=e.actor)
