"""Where each read model is: one typed row per read model in ``projection_state`` (its
live tables' position and failure, and a rebuild's under way), and the events read models
skipped (``projection_errors``).

Every read of the positions is one statement for all read models; writes happen inside
the transaction that writes the rows they account for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from lifecycle_es.reading.projection.db import ERRORS_TABLE, STATE_TABLE, ReadStore
from lifecycle_es.reading.projection.failures import Failure

_COLUMNS = ("name", "version", "position", "build", "rebuilt_at", "shadow_version",
            "shadow_position", "shadow_build", "shadow_cursor", "failure", "shadow_failure")
#: the columns a batch's position is recorded in: live tables, rebuild in recording
#: order, rebuild by aggregate (phase one)
POSITION_COLUMNS = ("position", "shadow_position", "shadow_cursor")


@dataclass(frozen=True)
class ModelState:
    """One read model's row of ``projection_state``."""

    name: str
    version: int  # -1: the live tables were never built
    position: int
    build: str
    rebuilt_at: str | None
    shadow_version: int | None
    shadow_position: int | None
    shadow_build: str | None
    #: phase one of a rebuild (by aggregate): the last aggregate done ('' before the first)
    shadow_cursor: str | None
    failure: Failure | None
    shadow_failure: Failure | None

    @property
    def built(self) -> bool:
        return self.version >= 0

    @property
    def rebuilding(self) -> bool:
        return bool(self.shadow_build)

    @property
    def phase_one(self) -> bool:
        """A rebuild under way, still replaying aggregate by aggregate."""
        return self.rebuilding and self.shadow_cursor is not None

    def reached(self, column: str) -> int:
        """The position recorded in ``position`` or ``shadow_position``."""
        return int((self.position if column == "position" else self.shadow_position) or 0)

    def failure_of(self, column: str) -> Failure | None:
        return self.failure if column == "position" else self.shadow_failure


def _failure(text: str | None) -> Failure | None:
    return Failure(**orjson.loads(text)) if text else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StateTable:
    """The positions and failures of the read models, and the events they skipped."""

    def __init__(self, read: ReadStore) -> None:
        self.read = read

    def all(self, names: Sequence[str] | None = None) -> dict[str, ModelState]:
        """The rows of ``names`` (default: every read model with one), in one statement."""
        rows = self.read.fetchall(f"SELECT {', '.join(_COLUMNS)} FROM {STATE_TABLE}")
        wanted = None if names is None else set(names)
        out = {}
        for row in rows:
            if wanted is None or row[0] in wanted:
                v = dict(zip(_COLUMNS, row, strict=True))
                v["failure"], v["shadow_failure"] = (_failure(v["failure"]),
                                                     _failure(v["shadow_failure"]))
                v["position"] = int(v["position"])
                out[row[0]] = ModelState(**v)
        return out

    def get(self, name: str) -> ModelState | None:
        return self.all([name]).get(name)

    def need(self, name: str) -> ModelState:
        from lifecycle_es.errors import LifecycleError

        st = self.get(name)
        if st is None:
            raise LifecycleError(f"projection {name}: its state row disappeared")
        return st

    # ------------------------------------------------------------- live tables

    def built_live(self, name: str, version: int, build: str,
                   previous: ModelState | None) -> None:
        """The live tables of ``name`` were (re)created empty as ``build``."""
        if previous is None:
            self.read.execute(f"INSERT INTO {STATE_TABLE} (name, version, position, build) "
                              "VALUES (?,?,0,?)", (name, version, build))
        else:  # a first rebuild is under way: keep its shadow columns
            self.read.execute(f"UPDATE {STATE_TABLE} SET version=?, position=0, build=?, "
                              "failure=NULL WHERE name=?", (version, build, name))
        self.read.execute(  # skipped events of tables that are no more
            f"DELETE FROM {ERRORS_TABLE} WHERE model=? AND build<>? AND build<>?",
            (name, build, (previous.shadow_build if previous else None) or ""))

    def record(self, name: str, column: str, reached: Any, failure: Failure | None) -> None:
        """How far a batch took ``name`` (in ``column``) and the failure it stopped at."""
        failure_column = "failure" if column == "position" else "shadow_failure"
        self.read.execute(
            f"UPDATE {STATE_TABLE} SET {column}=?, {failure_column}=? WHERE name=?",
            (reached, None if failure is None else orjson.dumps(asdict(failure)).decode(),
             name))

    def skipped(self, name: str, build: str, failure: Failure) -> None:
        """An event ``name`` passed over (``skip_failing``)."""
        self.read.execute(
            f"INSERT INTO {ERRORS_TABLE} (model, build, position, event_type, customer, "
            "error, skipped_at) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT (model, build, position) DO NOTHING",
            (name, build, failure.position, failure.event_type, failure.customer,
             failure.error, _now()))

    def skips(self) -> list[dict[str, Any]]:
        """Every skipped event, oldest first per read model."""
        cols = ("model", "position", "event_type", "customer", "error", "skipped_at", "build")
        rows = self.read.fetchall(
            f"SELECT {', '.join(cols)} FROM {ERRORS_TABLE} ORDER BY model, position, build")
        return [dict(zip(cols, r, strict=True)) for r in rows]

    # ----------------------------------------------------------------- rebuild

    def started_shadow(self, name: str, version: int, build: str, by_aggregate: bool,
                       previous: ModelState | None) -> None:
        """A rebuild of ``name`` into fresh shadow tables ``build`` begins."""
        if previous is None:
            self.read.execute(f"INSERT INTO {STATE_TABLE} (name, version, position, build) "
                              "VALUES (?,-1,0,'')", (name,))
        # shadow_cursor '' = replay aggregate by aggregate first (phase one)
        self.read.execute(
            f"UPDATE {STATE_TABLE} SET shadow_version=?, shadow_position=0, "
            "shadow_build=?, shadow_cursor=?, shadow_failure=NULL WHERE name=?",
            (version, build, "" if by_aggregate else None, name))
        if previous is not None and previous.shadow_build:  # an abandoned rebuild's skips
            self.read.execute(f"DELETE FROM {ERRORS_TABLE} WHERE model=? AND build=?",
                              (name, previous.shadow_build))

    def bound_phase_one(self, name: str, head: int) -> None:
        """Fix the end of phase one at ``head`` (unless a resumed rebuild fixed it)."""
        self.read.execute(f"UPDATE {STATE_TABLE} SET shadow_position=? WHERE name=? "
                          "AND shadow_cursor='' AND shadow_position=0", (head, name))

    def ended_phase_one(self, name: str) -> None:
        self.read.execute(f"UPDATE {STATE_TABLE} SET shadow_cursor=NULL WHERE name=?", (name,))

    def swapped(self, name: str, shadow_build: str) -> None:
        """The shadow tables of ``name`` became its live tables."""
        self.read.execute(
            f"UPDATE {STATE_TABLE} SET version=shadow_version, position=shadow_position, "
            "build=shadow_build, rebuilt_at=?, shadow_version=NULL, shadow_position=NULL, "
            "shadow_build=NULL, shadow_cursor=NULL, failure=NULL, shadow_failure=NULL "
            "WHERE name=?", (_now(), name))
        self.read.execute(  # the skips of the tables just replaced
            f"DELETE FROM {ERRORS_TABLE} WHERE model=? AND build<>?", (name, shadow_build))
