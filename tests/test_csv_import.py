"""``import FILE.csv --mapping MAP.toml``: the examples of docs/examples import on every
store; problems name the CSV line and the column; all or nothing; once only; hostile CSVs
and mappings."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import cli

from lifecycle_es import LifecycleEngine
from lifecycle_es.errors import ConfigError, InvalidInput
from lifecycle_es.writing.csv_mapping import FieldSpec, convert, minor_units

EXAMPLES = Path(__file__).parent.parent / "docs" / "examples"
DEALS_HEADER = "Deal ID,Company ID,Deal Stage,Amount,Currency,Close Date,Contract End,Plan," \
               "Deal Owner\n"


def crm(engine: LifecycleEngine) -> None:
    engine.import_file(EXAMPLES / "crm-contacts.csv", mapping=EXAMPLES / "crm-contacts.toml")


def test_the_examples_import(engine: LifecycleEngine) -> None:
    contacts = engine.import_file(EXAMPLES / "crm-contacts.csv",
                                  mapping=EXAMPLES / "crm-contacts.toml")
    assert (contacts.commands, contacts.customers_created) == (4, 4)
    deals = engine.import_file(EXAMPLES / "crm-deals.csv", mapping=EXAMPLES / "crm-deals.toml")
    assert deals.by_type == {"purchase": 2, "stage_changed": 1}  # the lost deal: skipped
    globex = engine.customer("1002").state
    assert (globex.stage, globex.owner) == ("consideration", None)
    acme = engine.customer("1001").state
    assert (acme.mrr, acme.currency, acme.paying) == (125_000, "EUR", True)  # 1,250.00 EUR
    assert engine.customer("1004").state.mrr == 12_000  # JPY has no minor unit
    first = engine.history("1001")[0]
    assert first.occurred_at.isoformat() == "2025-01-15T14:30:00+00:00"  # 09:30 in New York
    assert (first.actor, first.team, engine.history("1004")[0].stage) == (
        "crm-import", "marketing", "consideration")
    purchase = engine.history("1001")[-1]
    assert (purchase.actor, purchase.team, purchase.occurred_at.isoformat()) == (
        "jane", "sales", "2025-02-28T23:00:00+00:00")  # midnight in Berlin
    again = engine.import_file(EXAMPLES / "crm-deals.csv", mapping=EXAMPLES / "crm-deals.toml")
    assert again.already_imported is not None and again.events == 0  # once only
    assert engine.customer("1001").version == 2


def test_the_cli_imports_a_csv_through_a_mapping(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'c.db'}"
    out = cli(store, "import", str(EXAMPLES / "crm-contacts.csv"), "--mapping",
              str(EXAMPLES / "crm-contacts.toml")).stdout
    assert out.startswith("imported 4 commands (4 events, 4 new customers")
    again = cli(store, "import", str(EXAMPLES / "crm-contacts.csv"), "--mapping",
                str(EXAMPLES / "crm-contacts.toml")).stdout
    assert "already imported" in again
    bad = tmp_path / "deals.csv"
    bad.write_text(DEALS_HEADER + "D-1,1001,Closed Won,12.345,EUR,2025-03-01,2026-02-28,pro,"
                   "jane\n")
    proc = cli(store, "import", str(bad), "--mapping", str(EXAMPLES / "crm-deals.toml"),
               check=False)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "line 2: Amount (mrr)='12.345': more decimals than EUR has (2)",
        f"error: 1 problem in {bad}; nothing was written"]


def test_problems_name_the_line_and_the_column(tmp_path: Path) -> None:
    engine = LifecycleEngine("memory://")
    crm(engine)
    rows = tmp_path / "deals.csv"
    rows.write_text(
        DEALS_HEADER
        + "D-1,1001,Closed Won,100.00,EUR,2025-03-01,2026-02-28,pro,jane\n"   # good
        + "D-2,9999,Qualified To Buy,,USD,2025-03-05,,,tom\n"                # no customer
        + '"D-3\nspans two lines",1003,Bogus,,USD,2025-03-10,,,tom\n'        # lines 4-5
        + "D-4,1004,Closed Won,10,JPY,04/15/2025,2026-04-14,,jane\n"         # line 6
        + "\n"
        + "D-5,1001,Closed Won,x,EUR,2025-03-01,2024-01-01,pro,\n")          # line 8
    with pytest.raises(InvalidInput) as exc:
        engine.import_file(rows, mapping=EXAMPLES / "crm-deals.toml")
    assert [(p.line, p.field) for p in exc.value.problems] == [
        (3, "Company ID (customer)"), (4, "Deal Stage"), (6, "Close Date (at)"),
        (6, "Close Date (contract_start)"), (6, "Plan (plan)"), (8, "Amount (mrr)"),
        (8, "Deal Owner (actor)")]
    assert "no such customer" in exc.value.problems[0].reason
    assert engine.customer("1001").version == 1  # nothing written


@pytest.mark.parametrize(("content", "field", "reason"), [
    (b"Deal ID,Company ID\n1,2\n", "Amount", "no such column"),
    (b"", "header", "empty"),
    (DEALS_HEADER.encode() + b"D-1,10\x0001,Closed Won,100,EUR,2025-03-01,2026-02-28,pro,"
     b"jane\n", "Company ID (customer)", "control"),
    (DEALS_HEADER.encode() + b"D-1,1001,Closed Won,\xff\xfe,EUR\n", "header", "UTF-8"),
    (DEALS_HEADER.encode() + b"D-1,1001,Closed Won,1" + b"0" * 100 + b",EUR,2025-03-01,"
     b"2026-02-28,pro,jane\n", "Amount (mrr)", "longer than"),
    (DEALS_HEADER.encode() + b"D-1,1001,Closed Won,99999999999999999,EUR,2025-03-01,"
     b"2026-02-28,pro,jane\n", "Amount (mrr)", "less than or equal"),
    (DEALS_HEADER.encode() + b"D-1,1001,Closed Won,100,EUR,2025-03-01,2026-02-28,"
     b"<script>alert(1)</script>" + b"p" * 300 + b",jane\n", "Plan (plan)", "at most"),
])
def test_hostile_csv_files(tmp_path: Path, content: bytes, field: str, reason: str) -> None:
    engine = LifecycleEngine("memory://")
    crm(engine)
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as exc:
        engine.import_file(path, mapping=EXAMPLES / "crm-deals.toml")
    problem = exc.value.problems[0]
    assert (problem.field, reason in problem.reason) == (field, True), problem
    assert engine.customer("1001").version == 1


@pytest.mark.parametrize(("toml", "said"), [
    ("kinds = 3", "kinds=3"),
    ("[kinds.a]\ntype = \"nope\"", "unknown command type"),
    ("[kinds.a]\ntype = \"purchase\"\n[kinds.a.fields]\nfoo = \"x\"", "has no field 'foo'"),
    ("[kinds.a]\ntype = \"purchase\"\n[kinds.b]\ntype = \"payment\"", "kind_column"),
    ("[kinds.a]\ntype = \"payment\"\n[kinds.a.fields]\nat = { column = \"x\", value = \"y\" }",
     "either column or value"),
    ("[kinds.a]\ntype = \"payment\"\n[kinds.a.fields]\nat = { column = \"x\", timezone = "
     "\"Mars/Olympus\" }", "time zone"),
    ("[kinds.a]\ntype = \"payment\"\n[kinds.a.fields]\nat = { column = \"x\", as = \"blob\" }",
     "as"),
    ("kinds = [", "mapping"),
])
def test_bad_mappings_say_the_key(tmp_path: Path, toml: str, said: str) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text(toml)
    engine = LifecycleEngine("memory://")
    with pytest.raises(ConfigError) as exc:
        engine.import_file(EXAMPLES / "crm-deals.csv", mapping=mapping)
    assert said in str(exc.value) and str(mapping) in str(exc.value)


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("1,234.50", "EUR", 123_450), ("0.01", "USD", 1), ("12,000", "JPY", 12_000),
    ("1.234", "KWD", 1_234), ("7", "EUR", 700), ("-5.00", "EUR", -500)])
def test_money_from_major_units(text: str, currency: str, minor: int) -> None:
    assert minor_units(text, FieldSpec(column="a", as_="money"), currency) == minor


def test_money_with_decimal_commas_and_refusals() -> None:
    euro = FieldSpec(column="a", as_="money", decimal=",", thousands=".")
    assert minor_units("1.234,50", euro, "EUR") == 123_450
    for text, currency in (("1.5", "JPY"), ("1,2,3.4.5", "EUR"), ("", "EUR"), ("1e9", "EUR"),
                           ("NaN", "EUR"), ("10", None), ("10", "eur")):
        with pytest.raises(ValueError):
            minor_units(text, FieldSpec(column="a", as_="money"), currency)


def test_conversions() -> None:
    assert convert(" 42 ", FieldSpec(column="a", as_="integer")) == 42
    assert convert("Yes", FieldSpec(column="a", as_="boolean")) is True
    assert convert("31/12/2025", FieldSpec(column="a", as_="date", format="%d/%m/%Y")) == \
        "2025-12-31"
    assert convert("2025-06-01T10:00:00+02:00", FieldSpec(column="a", as_="time")) == \
        "2025-06-01T10:00:00+02:00"
    for cell, spec in (("4.2", FieldSpec(column="a", as_="integer")),
                       ("9" * 30, FieldSpec(column="a", as_="integer")),
                       ("maybe", FieldSpec(column="a", as_="boolean")),
                       ("2025-13-01", FieldSpec(column="a", as_="date"))):
        with pytest.raises(ValueError):
            convert(cell, spec)
