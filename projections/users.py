"""users: one row per person of the web console: team, role, whether disabled, since when.

``lifecycle-es users list`` and the console's user page read it; the password hash is never
in it (sign-in loads the user itself, ``engine.user(name)``).
"""

from __future__ import annotations

from lifecycle_es.domain import User
from lifecycle_es.projection import Projection, Table, Tables, on


class Users(Projection):
    name = "users"
    version = 1
    rebuild_cost = 0.1  # relative, for rebuild --jobs: a row per user
    replay_by_aggregate = True  # handlers touch only the row of the event's own user
    description = "per console user: team, role, disabled, who changed them last and when"
    tables = (
        Table(
            "users",
            key=("name",),
            partition=None,
            columns={
                "name": "text",
                "team": "text",
                "role": "text",
                "disabled": "bool",
                "added_at": "timestamp",
                "changed_at": "timestamp",
                "changed_by": "text",
            },
            doc={
                "name": "the user name people sign in with",
                "team": "the team the user acts for",
                "role": "member, lead, compliance or admin",
                "disabled": "the user can no longer sign in",
                "added_at": "when the user was added",
                "changed_at": "when the user was last changed (added, role, password, disabled)",
                "changed_by": "who made that last change",
            },
        ),
    )

    def _changed(self, e: User.Event, db: Tables, **changes: object) -> None:
        db["users"].update(e.user, changed_at=e.occurred_at, changed_by=e.actor, **changes)

    @on(User.Added)
    def added(self, e: User.Added, db: Tables) -> None:
        db["users"].put({"name": e.user, "team": e.user_team, "role": e.role, "disabled": False,
                         "added_at": e.occurred_at, "changed_at": e.occurred_at,
                         "changed_by": e.actor})

    @on(User.RoleChanged)
    def role_changed(self, e: User.RoleChanged, db: Tables) -> None:
        self._changed(e, db, role=e.role)

    @on(User.PasswordChanged)
    def password_changed(self, e: User.PasswordChanged, db: Tables) -> None:
        self._changed(e, db)

    @on(User.Disabled)
    def disabled(self, e: User.Disabled, db: Tables) -> None:
        self._changed(e, db, disabled=True)
