"""BG/NBD and Gamma-Gamma against Fader, Hardie & Lee's published CDNOW figures: the 1/10
sample imported as registrations and payments, fitted as of 1997-10-01 in weeks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cdnow import PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, cdnow_lines
from cli_helpers import cli

from lifecycle_es import LifecycleEngine


def within_1pct(fitted: dict[str, float], published: dict[str, float]) -> None:
    for name, value in published.items():
        assert fitted[name] == pytest.approx(value, rel=0.01), name


@pytest.fixture
def cdnow_store(durable_store_url: str) -> Iterator[str]:
    with LifecycleEngine(durable_store_url) as engine:
        result = engine.import_lines(cdnow_lines())
        assert result.customers_created == 2357 and result.by_type["payment"] == 6919
    yield durable_store_url


def test_the_cli_reproduces_the_published_parameters(cdnow_store: str) -> None:
    out = json.loads(cli(cdnow_store, "predict", "--as-of", "1997-10-01", "--unit", "week",
                         "--json").stdout)
    model = out["model"]
    within_1pct(model, PUBLISHED_BGNBD)
    assert model["customers"] == 2357 and model["converged"] is True
    assert model["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)  # the paper's LL
    (usd,) = out["monetary"]
    assert usd["currency"] == "USD" and usd["customers"] == 946
    within_1pct(usd, PUBLISHED_GAMMA_GAMMA)
    customers = {c["customer"]: c for c in out["customers"]}
    assert len(customers) == 2357
    # customer 1 of the sample: 4 purchases on 4 days to 1997-09-30, the first 1997-01-01
    one = customers["cd0001"]
    assert (one["frequency"], one["recency"], one["T"]) == (2, pytest.approx(213 / 7),
                                                            pytest.approx(272 / 7))
    assert one["monetary_value"] == pytest.approx((29.73 + 14.96) / 2)
    assert 0 < one["p_alive"] < 1 and one["expected_value"] > 0
    assert sum(c["frequency"] > 0 for c in customers.values()) == 946
    assert all(c["p_alive"] == 1 for c in customers.values() if c["frequency"] == 0)


def test_a_later_date_sees_the_later_purchases(cdnow_store: str) -> None:
    with LifecycleEngine(cdnow_store) as engine:
        early = engine.predict("1997-10-01", unit="week")
        late = engine.predict("1998-07-01", unit="week")
    assert late.model.customers == early.model.customers == 2357
    assert sum(c.frequency for c in late.customers) > sum(c.frequency for c in early.customers)
    assert late.model.r != pytest.approx(early.model.r, rel=1e-3)


def test_the_cli_csv_table_and_bad_options(cdnow_store: str) -> None:
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(cli(
        cdnow_store, "predict", "--as-of", "1997-10-01", "--unit", "week", "--csv").stdout)))
    assert len(rows) == 2357 and rows[0]["customer"] == "cd0001"
    assert float(rows[0]["p_alive"]) == pytest.approx(0.7266, abs=1e-4)
    table = cli(cdnow_store, "predict", "--as-of", "1997-10-01", "--unit", "week").stdout
    assert "BG/NBD as of 1997-10-01" in table and "Gamma-Gamma" in table
    for args, field in ((("--unit", "fortnight"), "unit"), (("--unit", "day\x01"), "unit"),
                        (("--horizon", "0"), "horizon"),
                        (("--horizon", "9" * 40), "horizon"),
                        (("--discount", "nan"), "discount"), (("--discount", "1"), "discount"),
                        (("--as-of", "1997-02-30"), "as_of"),
                        (("--as-of", "<script>"), "as_of")):
        proc = cli(cdnow_store, "predict", *args, check=False)
        assert proc.returncode == 2 and proc.stdout == "", (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and f"{field}=" in proc.stderr, proc.stderr
    proc = cli(cdnow_store, "predict", "--json", "--csv", check=False)
    assert proc.returncode == 2 and "--csv" in proc.stderr
