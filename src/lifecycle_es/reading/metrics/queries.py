"""The metric queries: SQL over the ``metrics`` and ``stage_history`` read models.

``engine.metrics`` is a :class:`Metrics`. Each query first catches its read models up with
the log (``catch_up=False`` on the constructor to read them as they are). Definitions, with
worked examples, are in docs/metrics.md; times are UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from lifecycle_es.domain.ids import parse_id
from lifecycle_es.domain.stage_model import CHURNED
from lifecycle_es.errors import FieldProblem, InvalidInput, UnknownCustomer
from lifecycle_es.reading.metrics import calc
from lifecycle_es.reading.metrics.calc import When, instant, median, percentile, ratio
from lifecycle_es.reading.metrics.results import (
    CohortRow,
    Cohorts,
    Csat,
    Funnel,
    FunnelStage,
    HistoricalClv,
    MrrPoint,
    Nps,
    NpsPoint,
    PredictiveClv,
    RevenueRetention,
    StageSummary,
    StageTime,
    Summary,
    TimeInStage,
)

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.db import ReadStore
    from lifecycle_es.reading.source import Source

READ_MODELS = ("metrics", "stage_history")
ACTIVITIES = ("paying", "payments")


class Metrics:
    """Lifecycle metrics of one engine, for any period."""

    def __init__(self, engine: Source, *, catch_up: bool = True) -> None:
        self.engine = engine
        self.catch_up = catch_up

    # ------------------------------------------------------------ plumbing

    @property
    def _read(self) -> ReadStore:
        return self.engine.projections.read

    def _fresh(self) -> None:
        self.engine.projections.ensure_current(list(READ_MODELS), self.catch_up)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        enc = self._read.encode
        return self._read.fetchall(sql, [
            enc("timestamp", p) if isinstance(p, datetime) else p for p in params])

    def _all(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a whole-table read; within a top-level call read once (the series
        and the summaries share them)."""
        memo = self.engine.projections.call_memo
        if memo is None:
            return self._rows(sql)
        rows = memo.get(("metrics", sql))
        if rows is None:
            rows = memo["metrics", sql] = self._rows(sql)
        return list(rows)

    def _ts(self, value: Any) -> datetime:
        t = self._read.decode("timestamp", value)
        assert isinstance(t, datetime)
        return t.astimezone(UTC)

    def _now(self) -> datetime:
        return datetime.now(UTC)

    # --------------------------------------------------------- facts at t

    def paying_at(self, t: When) -> set[str]:
        """Customers paying at ``t``: a purchase/won_back at or before t not followed by a
        churn at or before t."""
        self._fresh()
        return self._paying_at(instant(t, "at"))

    def _paying_at(self, t: datetime) -> set[str]:
        return {r[0] for r in self._rows(
            "SELECT DISTINCT customer FROM metrics_paying "
            "WHERE paying_from <= ? AND (paying_to IS NULL OR paying_to > ?)", (t, t))}

    def _paying_in(self, periods: Sequence[Period]) -> list[tuple[set[str], set[str], set[str]]]:
        """Per period [t0, t1): the customers paying at ``t0``, those paying at ``t1`` and
        those whose paying ended in it (one statement)."""
        paying = "MAX(CASE WHEN paying_from <= ? AND (paying_to IS NULL OR paying_to > ?) " \
                 "THEN 1 ELSE 0 END)"
        ended = "MAX(CASE WHEN paying_to >= ? AND paying_to < ? THEN 1 ELSE 0 END)"
        rows = self._rows(
            f"SELECT customer, {', '.join([paying, paying, ended] * len(periods))} "
            "FROM metrics_paying GROUP BY customer",
            [t for t0, t1 in periods for t in (t0, t0, t1, t1, t0, t1)])
        return [({r[0] for r in rows if r[1 + 3 * i]}, {r[0] for r in rows if r[2 + 3 * i]},
                 {r[0] for r in rows if r[3 + 3 * i]}) for i in range(len(periods))]

    def _paying_from_spans(self, periods: Sequence[Period]
                           ) -> list[tuple[set[str], set[str], set[str]]]:
        """:meth:`_paying_in` from every paying span (:data:`_PAYING_SPANS`)."""
        spans = [(c, self._ts(p_from), None if p_to is None else self._ts(p_to))
                 for c, p_from, p_to, _ in self._all(_PAYING_SPANS)]

        def paying_at(t: datetime) -> set[str]:
            return {c for c, p_from, p_to in spans
                    if p_from <= t and (p_to is None or p_to > t)}

        return [(paying_at(t0), paying_at(t1),
                 {c for c, _, p_to in spans if p_to is not None and t0 <= p_to < t1})
                for t0, t1 in periods]

    def _mrr_from_changes(self, times: Sequence[datetime]
                          ) -> list[dict[str, tuple[int, str | None]]]:
        """:meth:`_mrr_at` from every MRR change (:data:`_MRR_CHANGES`, in their order)."""
        changes = [(c, self._ts(at), int(m), cur) for c, at, m, cur in self._all(_MRR_CHANGES)]
        out: list[dict[str, tuple[int, str | None]]] = []
        for t in times:
            latest: dict[str, tuple[int, str | None]] = {}
            for c, at, m, cur in changes:
                if at <= t:
                    latest[c] = (m, cur)
            out.append(latest)
        return out

    def _mrr_at(self, *times: datetime) -> list[dict[str, tuple[int, str | None]]]:
        """Per time t: customer -> (MRR, currency) after the latest MRR change at or before
        t (one statement)."""
        latest = (
            "SELECT {i}, customer, mrr_after, currency FROM (SELECT customer, mrr_after, "
            "currency, ROW_NUMBER() OVER (PARTITION BY customer ORDER BY at DESC, "
            "version DESC) AS rn FROM metrics_mrr WHERE at <= ?) latest{i} WHERE rn = 1")
        out: list[dict[str, tuple[int, str | None]]] = [{} for _ in times]
        for i, c, m, cur in self._rows(" UNION ALL ".join(
                latest.format(i=i) for i in range(len(times))), times):
            out[int(i)][c] = (int(m), cur)
        return out

    # -------------------------------------------------------------- summary

    def summary(self, start: When, end: When, *, margin: Fraction | float | str = 1
                ) -> Summary:
        """Retention, churn, GRR/NRR, NPS, CSAT and CLV for the period [start, end)."""
        return self.summaries([(start, end)], margin=margin)[0]

    def summaries(self, periods: Sequence[tuple[When, When]], *,
                  margin: Fraction | float | str = 1) -> list[Summary]:
        """:meth:`summary` of each period, read together (four statements in all)."""
        self._fresh()
        bounds: list[Period] = []
        for start, end in periods:
            t0, t1 = instant(start, "from"), instant(end, "to")
            calc.check_period(t0, t1)
            bounds.append((t0, t1))
        margin_f = _margin(margin)
        times = [t for period in bounds for t in period]
        if self.engine.projections.call_memo is None:
            paying, mrr = self._paying_in(bounds), self._mrr_at(*times)
        else:  # within a call: from the rows the series read too
            paying, mrr = self._paying_from_spans(bounds), self._mrr_from_changes(times)
        scores = self._scores(bounds)
        clv = self._historical_clv([t1 for _, t1 in bounds])
        out = []
        for i, (t0, t1) in enumerate(bounds):
            s_set, e_set, ended = paying[i]
            new = e_set - s_set
            churned = ended & s_set
            churn_rate = ratio(len(churned), len(s_set))
            months = calc.period_months(t0, t1)
            revenue = _revenue(s_set, mrr[2 * i], mrr[2 * i + 1])
            out.append(Summary(
                start=t0, end=t1, months=months, paying_at_start=len(s_set),
                paying_at_end=len(e_set), new=len(new), retained=len(e_set) - len(new),
                churned=len(churned), retention_rate=ratio(len(e_set) - len(new), len(s_set)),
                churn_rate=churn_rate, revenue=revenue, nps=_nps_of(scores[i]["nps"]),
                csat=_csat_of(scores[i]["csat"]), historical_clv=clv[i],
                predictive_clv=_predictive(revenue, margin_f, churn_rate, months),
            ))
        return out

    def _scores(self, periods: Sequence[Period]) -> list[dict[str, dict[int, int]]]:
        """Per period [t0, t1): kind (``nps``, ``csat``) -> score -> answers (one
        statement)."""
        out: list[dict[str, dict[int, int]]] = [{"nps": {}, "csat": {}} for _ in periods]
        part = ("SELECT {i}, kind, score, COUNT(*) FROM metrics_answers WHERE kind IN (?, ?) "
                "AND at >= ? AND at < ? GROUP BY kind, score")
        for i, kind, s, n in self._rows(
                " UNION ALL ".join(part.format(i=i) for i in range(len(periods))),
                [t for t0, t1 in periods for t in ("nps", "csat", t0, t1)]):
            out[int(i)][kind][int(s)] = int(n)
        return out

    def _historical_clv(self, ends: Sequence[datetime]) -> list[list[HistoricalClv]]:
        """Per end time: the CLV of the payments before it (one statement)."""
        per: list[dict[str, list[int]]] = [defaultdict(list) for _ in ends]
        part = ("SELECT {i}, customer, currency, SUM(amount) FROM metrics_payments "
                "WHERE at < ? GROUP BY customer, currency")
        for i, _c, cur, total in self._rows(
                " UNION ALL ".join(part.format(i=i) for i in range(len(ends))), ends):
            per[int(i)][cur].append(int(total))
        out: list[list[HistoricalClv]] = []
        for by_currency in per:
            clv = []
            for cur, totals in sorted(by_currency.items()):
                mid = median(totals)
                assert mid is not None
                clv.append(HistoricalClv(currency=cur, customers=len(totals),
                                         total=sum(totals),
                                         mean=Fraction(sum(totals), len(totals)), median=mid))
            out.append(clv)
        return out

    # --------------------------------------------------------------- funnel

    def funnel(self, start: When | None = None, end: When | None = None) -> Funnel:
        """The cumulative stage funnel of customers who entered a stage in [start, end)
        (ever, when no period is given); see docs/metrics.md#funnel."""
        self._fresh()
        t0 = instant(start, "from") if start is not None else None
        t1 = instant(end, "to") if end is not None else None
        if t0 is not None and t1 is not None:
            calc.check_period(t0, t1)
        model = self.engine.stage_model
        names = model.names
        where, params = "stage <> ?", list[Any]([CHURNED])
        if t1 is not None:
            where += " AND entered_at < ?"
            params.append(t1)
        in_period = "1" if t0 is None else "CASE WHEN entered_at >= ? THEN 1 ELSE 0 END"
        sql = (f"SELECT customer, stage, MIN(entered_at), MAX({in_period}) FROM stage_stays "
               f"WHERE {where} GROUP BY customer, stage")
        rows = self._rows(sql, ([t0] if t0 is not None else []) + params)
        index = {n: i for i, n in enumerate(names)}
        first: dict[str, dict[int, datetime]] = defaultdict(dict)
        furthest: dict[str, int] = {}
        for customer, stage, entered, hit in rows:
            i = index.get(stage)
            if i is None:  # a stage of another model
                continue
            first[customer][i] = self._ts(entered)
            if int(hit):
                furthest[customer] = max(furthest.get(customer, -1), i)
        reached = [0] * len(names)
        entered_n = [0] * len(names)
        gaps: list[list[int]] = [[] for _ in names]  # microseconds
        for customer, top in furthest.items():
            firsts = first[customer]
            for i in range(top + 1):
                reached[i] += 1
                entered_n[i] += i in firsts
                if i < top and i in firsts and i + 1 in firsts \
                        and firsts[i + 1] >= firsts[i]:
                    gaps[i].append(calc.micros(firsts[i + 1] - firsts[i]))
        stages = [
            FunnelStage(
                stage=n, team=model.stage(n).team, reached=reached[i], entered=entered_n[i],
                skipped=reached[i] - entered_n[i],
                conversion_to_next=ratio(reached[i + 1], reached[i])
                if i + 1 < len(names) else None,
                median_days_to_next=calc.micros_to_days(median(gaps[i])),
                to_next_samples=len(gaps[i]),
            )
            for i, n in enumerate(names)
        ]
        return Funnel(start=t0, end=t1, customers=reached[0] if names else 0, stages=stages)

    # -------------------------------------------------------- time in stage

    def time_in_stage(self, start: When | None = None, end: When | None = None,
                      as_of: When | None = None) -> TimeInStage:
        """Median and p90 of completed stays per stage (those that ended in [start, end) if
        given, and at or before ``as_of``), and the stays open at ``as_of`` (default: end,
        else now)."""
        self._fresh()
        t0 = instant(start, "from") if start is not None else None
        t1 = instant(end, "to") if end is not None else None
        if t0 is not None and t1 is not None:
            calc.check_period(t0, t1)
        now = instant(as_of, "as_of") if as_of is not None else (t1 or self._now())
        where, params = ["exited_at IS NOT NULL", "exited_at <= ?"], [now]
        if t0 is not None:
            where.append("exited_at >= ?")
            params.append(t0)
        if t1 is not None:
            where.append("exited_at < ?")
            params.append(t1)
        # durations in integer microseconds: sorting Fractions would be 10x slower
        done: dict[str, list[int]] = defaultdict(list)
        for stage, seconds in self._rows(
                f"SELECT stage, seconds FROM stage_stays WHERE {' AND '.join(where)}", params):
            done[stage].append(calc.seconds_to_micros(seconds))
        open_: dict[str, list[int]] = defaultdict(list)
        for stage, entered in self._rows(
                "SELECT stage, entered_at FROM stage_stays WHERE entered_at <= ? "
                "AND (exited_at IS NULL OR exited_at > ?)", (now, now)):
            open_[stage].append(calc.micros(now - self._ts(entered)))
        names = [*self.engine.stage_model.names, CHURNED]
        names += sorted((set(done) | set(open_)) - set(names))
        days = calc.micros_to_days
        stages = [
            StageTime(stage=n, completed=len(done[n]), median_days=days(median(done[n])),
                      p90_days=days(percentile(done[n], 90)), open=len(open_[n]),
                      open_median_days=days(median(open_[n])),
                      open_p90_days=days(percentile(open_[n], 90)))
            for n in names
        ]
        return TimeInStage(start=t0, end=t1, as_of=now, stages=stages)

    def stage_history(self, customer: str, as_of: When | None = None) -> list[StageSummary]:
        """One customer's stages: first/last entered, last exited, entries and cumulative
        time (re-entries counted), exactly as of ``as_of`` (default now)."""
        customer = parse_id("customer", customer)
        self._fresh()
        now = instant(as_of, "as_of") if as_of is not None else self._now()
        stays = self._rows(
            "SELECT stage, entered_at, exited_at FROM stage_stays WHERE customer = ? "
            "AND entered_at <= ? ORDER BY entered_at, entered_version", (customer, now))
        if not stays and not self._rows(
                "SELECT 1 FROM metrics_customers WHERE customer = ?", (customer,)):
            raise UnknownCustomer(customer)
        acc: dict[str, dict[str, Any]] = {}
        for stage, entered_raw, exited_raw in stays:
            entered = self._ts(entered_raw)
            exited = self._ts(exited_raw) if exited_raw is not None else None
            if exited is not None and exited > now:
                exited = None
            a = acc.setdefault(stage, {"first": entered, "entries": 0, "days": Fraction(0),
                                       "exited": None})
            a["entries"] += 1
            a["last"] = entered
            a["days"] += calc.days((exited or now) - entered)
            a["open"] = exited is None
            if exited is not None:
                a["exited"] = exited
        return [
            StageSummary(stage=s, first_entered=a["first"], last_entered=a["last"],
                         last_exited=a["exited"], entries=a["entries"],
                         cumulative_days=a["days"], in_stage=a["open"])
            for s, a in acc.items()
        ]

    # --------------------------------------------------------------- cohorts

    def cohorts(self, activity: str = "paying", as_of: When | None = None) -> Cohorts:
        """Retention by acquisition month, over the complete UTC months before ``as_of``.

        ``paying``: cohort = month of the first purchase; active in month k = paying at the
        end of month k (the first instant of the next month). ``payments``: cohort = month of
        the first payment; active in month k = made a payment in month k.
        """
        if activity not in ACTIVITIES:
            raise InvalidInput([FieldProblem("activity", activity,
                                             f"expected one of {', '.join(ACTIVITIES)}")])
        self._fresh()
        now = instant(as_of, "as_of") if as_of is not None else self._now()
        cutoff = calc.month_start(now)  # months ending at or before as_of are complete
        last = calc.month_label(calc.add_months(cutoff, -1))
        col = "first_purchase" if activity == "paying" else "first_payment"
        sizes = {m: int(n) for m, n in self._rows(
            f"SELECT {col}_month, COUNT(*) FROM metrics_customers WHERE {col}_at < ? "
            f"GROUP BY {col}_month", (cutoff,))}
        if not sizes:
            return Cohorts(activity=activity, as_of=now, last_month=None, rows=[])
        if activity == "paying":
            active = self._paying_by_cohort(min(sizes), cutoff)
        else:
            active = {(c, m): int(n) for c, m, n in self._rows(
                "SELECT c.first_payment_month, p.month, COUNT(DISTINCT p.customer) "
                "FROM metrics_customers c JOIN metrics_payments p ON p.customer = c.customer "
                "WHERE c.first_payment_at < ? AND p.at < ? "
                "GROUP BY c.first_payment_month, p.month", (cutoff, cutoff))}
        rows = []
        for cohort in sorted(sizes):
            counts = [active.get((cohort, calc.month_label(
                calc.add_months(calc.label_start(cohort), k))), 0)
                for k in range(calc.months_between(cohort, last) + 1)]
            rows.append(CohortRow(cohort=cohort, size=sizes[cohort], active=counts,
                                  shares=[Fraction(n, sizes[cohort]) for n in counts]))
        return Cohorts(activity=activity, as_of=now, last_month=last, rows=rows)

    def _month_ends(self, first: str, cutoff: datetime) -> dict[datetime, str]:
        """End-of-month instants (first instant of the next month) -> month label, for the
        months from ``first`` up to the month before ``cutoff``."""
        out, t = {}, calc.label_start(first)
        while t < cutoff:
            nxt = calc.add_months(t, 1)
            out[nxt] = calc.month_label(t)
            t = nxt
        return out

    def _bounds_cte(self, bounds: Iterable[datetime]) -> tuple[str, list[datetime]]:
        values = list(bounds)
        return "WITH b(t) AS (VALUES " + ", ".join(["(?)"] * len(values)) + ")", values

    def _paying_by_cohort(self, first: str, cutoff: datetime) -> dict[tuple[str, str], int]:
        ends = self._month_ends(first, cutoff)
        if not ends:
            return {}
        cte, params = self._bounds_cte(ends)
        if self._read.dialect == "postgresql":
            cte = cte.replace("(?)", "(?::timestamptz)")
        rows = self._rows(
            f"{cte} SELECT c.first_purchase_month, b.t, COUNT(DISTINCT c.customer) "
            "FROM metrics_customers c JOIN metrics_paying p ON p.customer = c.customer "
            "JOIN b ON b.t > c.first_purchase_at AND p.paying_from <= b.t "
            "AND (p.paying_to IS NULL OR p.paying_to > b.t) "
            "WHERE c.first_purchase_month IS NOT NULL "
            "GROUP BY c.first_purchase_month, b.t", params)
        return {(c, ends[self._ts(t)]): int(n) for c, t, n in rows}

    # ---------------------------------------------------------------- series

    def mrr_series(self, start: When | None = None, end: When | None = None) -> list[MrrPoint]:
        """Total MRR and paying customers per currency at the end of each UTC month from
        ``start``'s month to the month before ``end`` (default: first MRR change to now)."""
        self._fresh()
        changes = [(c, self._ts(at), int(m), cur or "?")
                   for c, at, m, cur in self._all(_MRR_CHANGES)]
        if not changes and start is None:
            return []
        first = (calc.month_start(instant(start, "from")) if start is not None
                 else calc.month_start(changes[0][1]))
        stop = instant(end, "to") if end is not None else calc.add_months(
            calc.month_start(self._now()), 1)
        ends = self._month_ends(calc.month_label(first), stop)
        current: dict[str, tuple[int, str]] = {}
        paying_rows = [
            (c, self._ts(p_from), None if p_to is None else self._ts(p_to), cur or "?")
            for c, p_from, p_to, cur in self._all(_PAYING_SPANS)]
        points: list[MrrPoint] = []
        i = 0
        for t, label in ends.items():
            while i < len(changes) and changes[i][1] <= t:
                c, _at, mrr, cur = changes[i]
                current[c] = (mrr, cur)
                i += 1
            totals: dict[str, int] = defaultdict(int)
            for mrr, cur in current.values():
                totals[cur] += mrr
            paying: dict[str, set[str]] = defaultdict(set)
            for c, p_from, p_to, cur in paying_rows:
                if p_from <= t and (p_to is None or p_to > t):
                    paying[cur].add(c)
            for cur in sorted(set(totals) | set(paying)):
                points.append(MrrPoint(month=label, currency=cur, mrr=totals.get(cur, 0),
                                       paying=len(paying.get(cur, ()))))
        return points

    def nps_series(self, start: When | None = None, end: When | None = None) -> list[NpsPoint]:
        """NPS per UTC month of the answers, from ``start``'s month to the month before
        ``end`` (default: first answer to now); months without answers have score None."""
        self._fresh()
        rows = self._rows("SELECT month, score, COUNT(*) FROM metrics_answers WHERE kind = ? "
                          "GROUP BY month, score", ("nps",))
        by_month: dict[str, dict[int, int]] = defaultdict(dict)
        for month, score, n in rows:
            by_month[month][int(score)] = int(n)
        if not by_month and start is None:
            return []
        first = (calc.month_label(instant(start, "from")) if start is not None
                 else min(by_month))
        stop = instant(end, "to") if end is not None else calc.add_months(
            calc.month_start(self._now()), 1)
        out = []
        for label in self._month_ends(first, stop).values():
            n = _nps_of(by_month.get(label, {}))
            out.append(NpsPoint(month=label, answers=n.answers, promoters=n.promoters,
                                detractors=n.detractors, score=n.score))
        return out


#: a period [from, to)
Period = tuple[datetime, datetime]

#: every MRR change, in the order they happened
_MRR_CHANGES = "SELECT customer, at, mrr_after, currency FROM metrics_mrr ORDER BY at, version"
#: every span of paying
_PAYING_SPANS = "SELECT customer, paying_from, paying_to, currency FROM metrics_paying"


def _revenue(s_set: set[str], at0: dict[str, tuple[int, str | None]],
             at1: dict[str, tuple[int, str | None]]) -> list[RevenueRetention]:
    """GRR/NRR per currency of the customers paying at the start, from their MRR at the
    start (``at0``) and at the end (``at1``)."""
    acc: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for c in s_set:
        m0, cur = at0.get(c, (0, None))
        m1 = at1.get(c, (0, cur))[0]
        a = acc[cur or "?"]
        a[0] += 1
        a[1] += m0
        a[2] += m1
        a[3] += min(m0, m1)
    return [
        RevenueRetention(currency=cur, customers=n, mrr_start=m0, mrr_end=m1,
                         mrr_retained=kept, grr=ratio(kept, m0), nrr=ratio(m1, m0))
        for cur, (n, m0, m1, kept) in sorted(acc.items())
    ]


def _csat_of(counts: dict[int, int]) -> Csat:
    answers = sum(counts.values())
    satisfied = sum(n for s, n in counts.items() if s >= 4)
    return Csat(answers=answers, satisfied=satisfied, share=ratio(satisfied, answers))


def _nps_of(counts: dict[int, int]) -> Nps:
    answers = sum(counts.values())
    promoters = sum(n for s, n in counts.items() if s >= 9)
    detractors = sum(n for s, n in counts.items() if s <= 6)
    score = ratio(100 * (promoters - detractors), answers)
    return Nps(answers=answers, promoters=promoters, passives=answers - promoters - detractors,
               detractors=detractors, score=score)


def _margin(value: Fraction | float | str) -> Fraction:
    try:
        m = Fraction(str(value)) if not isinstance(value, Fraction) else value
    except ValueError:
        m = Fraction(-1)
    if not 0 <= m <= 1:
        raise InvalidInput([FieldProblem("margin", value, "expected a number from 0 to 1")])
    return m


def _predictive(revenue: list[RevenueRetention], margin: Fraction,
                churn_rate: Fraction | None, months: Fraction) -> list[PredictiveClv]:
    monthly = None if churn_rate is None else churn_rate / months
    out = []
    for r in revenue:
        arpa = ratio(r.mrr_start, r.customers)
        why = None
        if arpa is None:
            why = "no paying customers at the period start"
        elif monthly is None:
            why = "churn rate undefined (no customers paying at the period start)"
        elif monthly == 0:
            why = "no churn in the period (monthly churn rate is 0)"
        value = None if why or arpa is None or not monthly else arpa * margin / monthly
        out.append(PredictiveClv(currency=r.currency, arpa=arpa, margin=margin,
                                 monthly_churn_rate=monthly, value=value, undefined=why))
    return out
