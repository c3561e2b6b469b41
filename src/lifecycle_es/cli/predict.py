"""`lifecycle-es predict`: probability alive and expected value per customer (BG/NBD and
Gamma-Gamma fitted as of a date; docs/metrics.md, "Predictive CLV").

``--json`` prints the prediction's ``to_dict()``; ``--csv`` one row per customer; without
either, the fitted parameters and the customers, most expected value first.
"""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle_es.cli.context import NoCatchUp, state
from lifecycle_es.cli.output import Csv, emit, one_format, plural, print_csv, print_json, say

CUSTOMER_COLUMNS = ("customer", "frequency", "recency", "T", "p_alive", "expected_occasions",
                    "expected_value", "currency", "monetary_value", "on_contract")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


def predict(
    ctx: typer.Context,
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="fit on the purchases before this date (YYYY-MM-DD, UTC; a time is "
                        "taken to its date) [default: today]", show_default=False)] = None,
    unit: Annotated[str, typer.Option(help="time unit of alpha, recency and T: day|week")
                    ] = "day",
    horizon: Annotated[int, typer.Option(help="days ahead for the expected occasions and "
                                         "value")] = 90,
    discount: Annotated[float, typer.Option(help="annual discount rate of the expected "
                                            "value, 0 <= rate < 1")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    as_csv: Csv = False,
    no_catch_up: NoCatchUp = False,
) -> None:
    """Probability alive, expected purchases and value per customer (BG/NBD, Gamma-Gamma)."""
    one_format(as_json, as_csv)
    p = state(ctx).reader(not no_catch_up).predict(as_of, unit=unit, horizon=horizon,
                                                   discount=discount)
    for warning in p.warnings:
        say(f"warning: {warning}", err=True)
    if as_json:
        print_json(p.to_dict())
        return
    rows = [c.as_dict() for c in p.customers]
    if as_csv:
        print_csv(rows, CUSTOMER_COLUMNS)
        return
    m = p.model
    emit([{"r": f"{m.r:.4g}", f"alpha ({p.unit}s)": f"{m.alpha:.4g}", "a": f"{m.a:.4g}",
           "b": f"{m.b:.4g}", "log-lik.": f"{m.log_likelihood:,.2f}",
           "customers": m.customers, "converged": m.converged}],
         ("r", f"alpha ({p.unit}s)", "a", "b", "log-lik.", "customers", "converged"),
         title=f"BG/NBD as of {p.as_of}")
    emit([{"currency": g.currency, "p": f"{g.p:.4g}", "q": f"{g.q:.4g}",
           "gamma": f"{g.gamma:.4g}", "customers": g.customers} for g in p.monetary],
         ("currency", "p", "q", "gamma", "customers"), title="Gamma-Gamma")
    rows.sort(key=lambda r: (-(r["expected_value"] or 0), r["customer"]))
    shown = [{**r, "recency": f"{r['recency']:.2f}", "T": f"{r['T']:.2f}",
              "p_alive": f"{r['p_alive']:.3f}",
              "occasions": f"{r['expected_occasions']:.3f}",
              "value": "" if r["expected_value"] is None
              else f"{r['currency']} {r['expected_value']:,.2f}"} for r in rows]
    emit(shown, ("customer", "frequency", "recency", "T", "p_alive", "occasions", "value"),
         title=f"{plural(len(rows), 'customer')}: the next {p.horizon_days} days "
               f"(recency and T in {p.unit}s)")
