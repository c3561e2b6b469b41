"""What the gap checks and the health score know about customers "as of" a time.

Everything is read from the ``gaps_facts`` and ``handover_history`` read models with queries
bounded by ``as_of`` (facts with business time <= as_of), so a past date gives the answer
that was true then, however many events were recorded since.

A customer none of whose facts happened after ``as_of`` (``gap_now.latest_at <= as_of``: at
"now", nearly every customer) is read from its ``gap_now`` row, one indexed row; only the
others are folded from the history of spans and points.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from lifecycle_es.domain.campaign import Campaign
from lifecycle_es.reading.metrics.calc import When, instant
from lifecycle_es.reading.projection.db import ReadStore

if TYPE_CHECKING:
    from lifecycle_es.reading.source import Source

#: the read models these queries read
READ_MODELS = ("gaps_facts", "handover_history")
#: every campaign announced at a time (the parameter), as the registry described it then
_CAMPAIGNS_AT = (
    "SELECT campaign, name, starts, ends, ended_at FROM (SELECT campaign, name, starts, "
    "ends, ended_at, ROW_NUMBER() OVER (PARTITION BY campaign ORDER BY seq DESC) AS rn "
    "FROM gap_campaigns WHERE at <= ?) AS latest WHERE rn = 1"
)


@dataclass
class CustomerFacts:
    """One customer at one time."""

    customer: str
    stage: str
    stage_since: datetime
    owner: str | None = None
    owner_team: str | None = None
    owner_since: datetime | None = None
    paying: bool = False
    mrr: int = 0
    currency: str | None = None
    contract_end: date | None = None
    last_check_in: datetime | None = None
    last_nps: int | None = None
    last_nps_at: datetime | None = None
    last_advocacy_ask: datetime | None = None  # latest advocacy request or gift
    advocacy_given: int = 0


@dataclass(frozen=True)
class CampaignVersion:
    """A campaign as the registry described it at some time."""

    campaign: str
    name: str | None
    starts: date
    ends: date
    ended_at: datetime | None

    def running_on(self, day: date) -> bool:
        """Whether it ran on ``day`` (the rule of :meth:`Campaign.running_on`)."""
        c = object.__new__(Campaign)
        c.details, c.ended_at = {"starts": self.starts, "ends": self.ends}, self.ended_at
        return c.running_on(day)


@dataclass(frozen=True)
class Scope:
    """The customers a query asks about, as of its time: in one of ``stages`` (None: any),
    owned by ``owner`` (None: anyone), among ``ids`` (None: all), paying or not (None:
    either). Pushed into SQL, with ``suspects``: a SQL condition on ``gap_now`` and its
    parameters that may leave out customers the query has no use for (the caller's
    :meth:`holds` is exact)."""

    stages: tuple[str, ...] | None = None
    owner: str | None = None
    ids: tuple[str, ...] | None = None
    paying: bool | None = None
    suspects: tuple[str, tuple[Any, ...]] | None = None

    def sql(self) -> tuple[str, list[Any]]:
        """The scope as a SQL condition on a table with ``customer``, ``stage``, ``owner``
        columns (``""``: none) and its parameters."""
        where: list[str] = []
        params: list[Any] = []
        for column, values in (("stage", self.stages), ("customer", self.ids)):
            if values is not None:
                where.append(f"{column} IN ({', '.join('?' * len(values))})" if values
                             else "1 = 0")
                params.extend(values)
        if self.owner is not None:
            where.append("owner = ?")
            params.append(self.owner)
        if self.paying is not None:
            where.append("paying = ?")
            params.append(self.paying)
        if self.suspects is not None:
            where.append(f"({self.suspects[0]})")
            params.extend(self.suspects[1])
        return " AND ".join(where), params

    def holds(self, f: CustomerFacts) -> bool:
        """Whether ``f`` is in the scope (``suspects`` aside)."""
        return ((self.stages is None or f.stage in self.stages)
                and (self.owner is None or f.owner == self.owner)
                and (self.ids is None or f.customer in self.ids)
                and (self.paying is None or f.paying == self.paying))


#: every customer
EVERYONE = Scope()


#: one customer, some customers, or (None) all
Who = str | tuple[str, ...] | None


def _among(customer: str | tuple[str, ...], prefix: str = "") -> tuple[str, list[str]]:
    """The condition (and its parameters) selecting one customer or some."""
    if isinstance(customer, str):
        return f"{prefix}customer = ?", [customer]
    if not customer:
        return "1 = 0", []
    return f"{prefix}customer IN ({', '.join('?' * len(customer))})", list(customer)


def _kind(customer: Who, prefix: str = "") -> str:
    """The ``kind`` column in a condition: for one customer (or some) an expression, so that the
    planner searches the table's primary key (customer first) rather than scanning the
    ``(kind, ...)`` index, which SQLite, without statistics, would otherwise prefer."""
    return f"{prefix}kind" if customer is None else f"({prefix}kind || '')"


#: a customer's facts in ``gap_now``, as :meth:`FactsReader._facts` reads them
_FACT_COLUMNS = ("customer, stage, stage_since, owner, owner_team, owner_since, paying, mrr, "
                 "currency, contract_end, last_check_in, last_nps, last_nps_at, "
                 "last_advocacy_ask, advocacy_given")

#: the ``kind`` column as :func:`_kind` writes it for some customers
_ONE_KIND = "(kind || '')"


def as_utc(value: When | None, field: str = "as_of") -> datetime:
    """``value`` (default: now) as an aware UTC datetime: a date is midnight UTC, a naive
    time is UTC, text is ISO 8601 (bad text raises InvalidInput naming ``field``)."""
    return datetime.now(UTC) if value is None else instant(value, field)


def reader_for(engine: Source) -> FactsReader:
    """A reader over the engine's read models, caught up with the log first (unless the
    engine's queries do not catch up: ``--no-catch-up``, a read store)."""
    engine.projections.ensure_current(list(READ_MODELS))
    return FactsReader(engine.projections.read, engine.projections.call_memo)


class FactsReader:
    """Queries over the facts read models, each bounded by an ``as_of`` time."""

    def __init__(self, read: ReadStore, memo: dict[Hashable, Any] | None = None) -> None:
        self.read = read
        #: rows already read in this top-level call, by statement and parameters (the
        #: report asks gaps, health and its own figures for the same facts)
        self.memo = memo

    def _fetchall(self, key: Hashable, sql: str,
                  params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """``read.fetchall``, read once per top-level call (when there is a memo)."""
        if self.memo is None:
            return self.read.fetchall(sql, params)
        rows = self.memo.get(key)
        if rows is None:
            rows = self.memo[key] = self.read.fetchall(sql, params)
        return list(rows)

    def _t(self, value: datetime) -> Any:
        return self.read.encode("timestamp", value)

    def time_param(self, value: datetime) -> Any:
        """A time as a query parameter compared with a timestamp column."""
        return self._t(value)

    def date_param(self, value: date) -> Any:
        """A date as a query parameter compared with a date column."""
        return self.read.encode("date", value)

    def _ts(self, value: Any) -> datetime | None:
        """A stored timestamp as an aware UTC datetime (stored ones are in range)."""
        if value is None:
            return None
        t = datetime.fromisoformat(value) if isinstance(value, str) else value
        assert isinstance(t, datetime)
        return t if t.tzinfo is UTC else t.astimezone(UTC)

    def _rows(self, sql: str, params: list[Any], customer: Who,
              tail: str = "", later_than: datetime | None = None) -> list[tuple[Any, ...]]:
        """Run ``sql`` (ending in a WHERE clause; rows begin with the customer), restricted
        to ``customer`` if given, and to customers with facts after ``later_than`` if given.
        Within a top-level call, rows read for every customer serve a later restricted ask."""
        return self._union([(sql, params)], customer, tail, later_than)

    def _union(self, parts: Sequence[tuple[str, list[Any]]], customer: Who, tail: str = "",
               later_than: datetime | None = None) -> list[tuple[Any, ...]]:
        """:meth:`_rows` of several statements, each part's rows after the previous
        part's (one ``UNION ALL`` statement)."""
        def joined(where: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
            sqls, params = [], []
            for sql, part in parts:
                params.extend(part)
                if later_than is not None:
                    sql += " AND customer IN (SELECT customer FROM gap_now WHERE latest_at > ?)"
                    params.append(self._t(later_than))
                if where:
                    sql += f" AND {where}"
                    params.extend(values)
                sqls.append(sql + tail)
            return " UNION ALL ".join(sqls), params

        sql, params = joined("", ())
        everyone = ("rows", sql.replace(_ONE_KIND, "kind"), tuple(params))
        if customer is None:
            return self._fetchall(everyone, sql, params)
        if self.memo is not None and everyone in self.memo:
            wanted = {customer} if isinstance(customer, str) else set(customer)
            return [r for r in self.memo[everyone] if r[0] in wanted]
        sql, params = joined(*_among(customer))
        return self._fetchall(("rows", sql, tuple(params)), sql, params)

    def _spans(self, at: datetime, kinds: tuple[str, ...], customer: Who,
               later_than: datetime | None = None) -> list[tuple[Any, ...]]:
        """The spans of ``kinds`` open at ``at``: those still open, then those ended after
        ``at`` (two searches of the ``(kind, end_at)`` index in one statement, not a walk
        through every span begun before ``at``: ``NOT (start_at > ?)`` keeps SQLite's
        planner, without statistics, off the ``(kind, start_at)`` index)."""
        marks = ", ".join("?" * len(kinds))
        sql = ("SELECT customer, kind, start_at, value, extra, number, day FROM gap_spans "
               f"WHERE {_kind(customer)} IN ({marks}) AND NOT (start_at > ?) AND ")
        t = self._t(at)
        return self._union([(sql + "end_at IS NULL", [*kinds, t]),
                            (sql + "end_at > ?", [*kinds, t, t])], customer,
                           later_than=later_than)

    def customers(self, as_of: datetime, customer: str | None = None,
                  scope: Scope = EVERYONE) -> dict[str, CustomerFacts]:
        """Every customer registered at ``as_of`` (or just ``customer``) and in ``scope``
        at that time, with its facts. Within a top-level call that read every customer's
        facts at ``as_of``, those serve (``scope.suspects`` is a subset of them)."""
        full = None if self.memo is None else self.memo.get(("customers", as_of))
        if full is not None:
            return {c: f for c, f in full.items()
                    if (customer is None or c == customer) and scope.holds(f)}
        if self.memo is not None and customer is None and scope == EVERYONE:
            out = self._everyone(as_of)
            self.memo["customers", as_of] = dict(out)
            return out
        newest = self.read.fetchone("SELECT MAX(latest_at) FROM gap_now")
        settled = newest is None or newest[0] is None or newest[0] <= self._t(as_of)
        out = self._current(as_of, customer, scope, bounded=not settled)
        if not settled:  # some customers' facts changed after as_of: fold theirs
            folded = self._folded(as_of, customer if customer is not None else scope.ids)
            out.update((c, f) for c, f in folded.items() if scope.holds(f))
        return out

    def _everyone(self, as_of: datetime) -> dict[str, CustomerFacts]:
        """Every customer's facts at ``as_of`` within a top-level call: one read of the
        whole ``gap_now`` serves every as-of time of the call (:meth:`customers` with its
        rows' ``latest_at`` compared here rather than in SQL)."""
        rows = self._fetchall("gap_now", f"SELECT {_FACT_COLUMNS}, latest_at FROM gap_now")
        t = self._t(as_of)
        newest = max((r[-1] for r in rows if r[-1] is not None), default=None)
        settled = newest is None or newest <= t
        out = self._facts(as_of, [r[:-1] for r in rows
                                  if settled or (r[-1] is not None and r[-1] <= t)])
        if not settled:  # some customers' facts changed after as_of: fold theirs
            out.update(self._folded(as_of, None))
        return out

    def _current(self, as_of: datetime, customer: str | None, scope: Scope,
                 bounded: bool = True) -> dict[str, CustomerFacts]:
        """The customers none of whose facts happened after ``as_of``, from ``gap_now``
        (not ``bounded``: the caller knows that holds for every customer, so the query
        scans the table rather than walk the whole ``latest_at`` index)."""
        where, params = scope.sql()
        conditions = ["latest_at <= ?"] if bounded else ["1 = 1"]
        params = [self._t(as_of), *params] if bounded else params
        sql = (f"SELECT {_FACT_COLUMNS} FROM gap_now WHERE "
               + " AND ".join([*conditions, *([where] if where else [])]))
        return self._facts(as_of, self._rows(sql, params, customer))

    def _facts(self, as_of: datetime, rows: list[tuple[Any, ...]]) -> dict[str, CustomerFacts]:
        """``gap_now`` rows (:data:`_FACT_COLUMNS`) as facts."""
        ts, day = self._ts, self._day
        return {
            c: CustomerFacts(c, stage, ts(since) or as_of, owner, team, ts(owned), bool(paying),
                             mrr, currency, day(end), ts(check_in), nps, ts(nps_at),
                             ts(ask), given)
            for (c, stage, since, owner, team, owned, paying, mrr, currency, end, check_in,
                 nps, nps_at, ask, given) in rows
        }

    def _day(self, value: Any) -> date | None:
        return date.fromisoformat(value) if isinstance(value, str) else value

    def _folded(self, as_of: datetime, customer: Who,
                changed_after: datetime | None = None) -> dict[str, CustomerFacts]:
        """The customers with facts after ``changed_after`` (default ``as_of``), folded
        from their spans and points as they were at ``as_of``."""
        out: dict[str, CustomerFacts] = {}
        later = as_of if changed_after is None else changed_after
        spans = self._spans(as_of, ("stage", "owner", "money"), customer, later)
        for cust, kind, start, value, _, _, _ in spans:
            if kind == "stage":
                out[cust] = CustomerFacts(cust, value, self._ts(start) or as_of)
        for cust, kind, start, value, extra, number, day in spans:
            f = out.get(cust)
            if f is None:
                continue
            if kind == "owner":
                f.owner, f.owner_team, f.owner_since = value, extra, self._ts(start)
            elif kind == "money":
                f.paying, f.mrr, f.currency = True, int(number or 0), value
                f.contract_end = self.read.decode("date", day)
        t = self._t(as_of)
        for cust, check_in, ask, given in self._rows(
            "SELECT customer, MAX(CASE WHEN kind='check_in' THEN at END), "
            "MAX(CASE WHEN kind<>'check_in' THEN at END), "
            "SUM(CASE WHEN kind='advocacy_given' THEN 1 ELSE 0 END) FROM gap_points "
            f"WHERE {_kind(customer)} IN ('check_in','advocacy_requested','advocacy_given') "
            "AND at <= ?",
            [t], customer, tail=" GROUP BY customer", later_than=later,
        ):
            f = out.get(cust)
            if f is not None:
                f.last_check_in, f.last_advocacy_ask = self._ts(check_in), self._ts(ask)
                f.advocacy_given = int(given or 0)
        for cust, at, score in self._rows(
            "SELECT customer, at, score FROM (SELECT customer, at, score, ROW_NUMBER() OVER "
            "(PARTITION BY customer ORDER BY at DESC, seq DESC) AS rn FROM gap_points "
            "WHERE kind='nps' AND at <= ?) AS latest WHERE rn = 1", [t], customer,
            later_than=later,
        ):
            f = out.get(cust)
            if f is not None:
                f.last_nps, f.last_nps_at = int(score), self._ts(at)
        return out

    def mrr_at(self, at: datetime, customer: Who = None) -> dict[str, int]:
        """MRR of every customer paying at ``at``."""
        return {cust: int(number or 0)
                for cust, _, _, _, _, number, _ in self._spans(at, ("money",), customer)}

    def pending_handovers(self, as_of: datetime, sent_before: datetime,
                          customer: Who = None, *, to_team: str | None = None,
                          to_person: str | None = None) -> list[dict[str, Any]]:
        """Handovers sent before ``sent_before`` and still undecided at ``as_of`` (to
        ``to_team``; to ``to_person`` or to nobody in particular, if given)."""
        cols = ("customer", "handover_id", "from_team", "to_team", "from_person", "to_person",
                "sent_at")
        sql = (f"SELECT {', '.join(cols)} FROM handover_history WHERE sent_at < ? "
               "AND (decided_at IS NULL OR decided_at > ?)")
        params = [self._t(min(sent_before, as_of)), self._t(as_of)]
        if to_team is not None:
            sql += " AND to_team = ?"
            params.append(to_team)
        if to_person is not None:
            sql += " AND (to_person = ? OR to_person IS NULL)"
            params.append(to_person)
        rows = self._rows(sql, params, customer)
        out = [dict(zip(cols, r, strict=True)) for r in rows]
        for r in out:
            r["sent_at"] = self._ts(r["sent_at"])
        return out

    def suspect_offers(self, as_of: datetime, after: datetime | None,
                       campaigns: dict[str, CampaignVersion], customer: Who = None, *,
                       team: str | None = None, actor: str | None = None,
                       until: datetime | None = None) -> list[dict[str, Any]]:
        """Touchpoints citing a campaign, at or before ``as_of`` (and after ``after``;
        recorded by ``team`` / ``actor``, at or before ``until``, if given) that may cite
        one not running then: one not among ``campaigns``, or the touchpoint before its
        start, after its end's midnight or after it was ended (a superset:
        :meth:`CampaignVersion.running_on` decides). The stored times are compared as
        stored: only the suspects are decoded."""
        sql = (f"SELECT customer, seq, at, ref, actor, team FROM gap_points "
               f"WHERE {_kind(customer)}='offer' AND at <= ?")
        params = [self._t(as_of if until is None else min(as_of, until))]
        if after is not None:
            sql += " AND at > ?"
            params.append(self._t(after))
        for column, value in (("team", team), ("actor", actor)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        rows = self._rows(sql, params, customer)
        windows = {c: self._window(v) for c, v in campaigns.items()}
        cols = ("customer", "seq", "at", "campaign", "actor", "team")
        out = []
        for r in rows:
            window = windows.get(r[3])
            if window is None or not window[0] <= r[2] <= window[1]:
                row = dict(zip(cols, r, strict=True))
                row["at"] = self._ts(row["at"])
                out.append(row)
        return out

    def gap_work(self, as_of: datetime, customer: Who = None) -> list[dict[str, Any]]:
        """The work recorded on gaps (``gap_work``) at or before ``as_of``, by business
        time then version: ``gap_id``, ``action``, ``assignee``, ``until``, ``reason``.
        Within a top-level call, picked from one read of all of it (shared by every as-of
        time of the call: the report asks for two)."""
        cols = ("customer", "gap_id", "action", "assignee", "until", "reason")
        rows = self._rows(f"SELECT {', '.join(cols)}, at FROM gap_work WHERE at IS NOT NULL",
                          [], customer, tail=" ORDER BY at, seq")
        t = self._t(as_of)
        out = [dict(zip(cols, r, strict=False)) for r in rows if r[-1] <= t]
        for r in out:
            r["until"] = self._day(r["until"])
        return out

    def _window(self, c: CampaignVersion) -> tuple[Any, Any]:
        """Stored times from ``c``'s first day to its last day's midnight (or when it was
        ended, if earlier): a touchpoint inside ran while ``c`` ran, or nearly."""
        last = datetime.combine(c.ends, time(), UTC)
        if c.ended_at is not None:
            last = min(last, c.ended_at)
        return self._t(datetime.combine(c.starts, time(), UTC)), self._t(last)

    def _campaign_rows(self, as_of: datetime) -> list[tuple[Any, ...]]:
        """Each campaign's latest version at ``as_of``; within a top-level call, picked
        from one read of every version (shared by every as-of time of the call)."""
        t = self._t(as_of)
        if self.memo is None:
            return self.read.fetchall(_CAMPAIGNS_AT, [t])
        latest: dict[Any, tuple[Any, ...]] = {}
        for *row, at in self._fetchall("campaigns", "SELECT campaign, name, starts, ends, "
                                       "ended_at, at FROM gap_campaigns ORDER BY campaign, seq"):
            if at is not None and at <= t:
                latest[row[0]] = tuple(row)
        return list(latest.values())

    def campaigns(self, as_of: datetime) -> dict[str, CampaignVersion]:
        """Every campaign announced at ``as_of``, as the registry described it then."""
        rows = self._campaign_rows(as_of)
        dec = self.read.decode
        return {
            c: CampaignVersion(c, name, dec("date", s), dec("date", e),
                               self._ts(ended) if ended is not None else None)
            for c, name, s, e, ended in rows
        }


def days(delta: timedelta) -> float:
    """A duration in days (fractional)."""
    return delta.total_seconds() / 86400
