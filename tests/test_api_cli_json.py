"""Every GET endpoint of the API answers the JSON of the CLI's ``--json`` for the same
question, on a demo store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from cli_helpers import cli, small_demo
from web_helpers import add_token, bearer, client

from lifecycle_es import LifecycleEngine

AS_OF = "2025-12-15T00:00:00Z"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return small_demo(tmp_path_factory, "api_json")


@pytest.fixture(scope="module")
def answers(store: str) -> Iterator[dict[str, object]]:
    engine = LifecycleEngine(store)
    engine.projections.catch_up()
    customer = engine.projections.read.fetchall(
        "SELECT customer FROM current_stage ORDER BY registered_at, customer")[0][0]
    token = bearer(add_token(engine, "bi", scope="read"))
    paths = {
        "state": f"/customers/{customer}",
        "past": f"/customers/{customer}?as_of=2025-06-01",
        "timeline": f"/customers/{customer}/timeline",
        "health": f"/customers/{customer}/health?as_of={AS_OF}",
        "gaps": f"/gaps?as_of={AS_OF}",
        "handovers": "/handovers",
        "pending": "/handovers?pending=true&older_than=2d",
        "stages": "/stages",
        "metrics": "/metrics?from=2025-01-01&to=2026-01-01",
    }
    out: dict[str, object] = {"customer": customer}
    with client(engine, follow=False) as c:
        out["kind"] = kind = c.get(f"/api/v1/gaps?as_of={AS_OF}", headers=token).json()[-1][
            "kind"]
        paths["gaps_kind"] = f"/gaps?as_of={AS_OF}&kind={kind}"
        for name, path in paths.items():
            r = c.get("/api/v1" + path, headers=token)
            assert r.status_code == 200, (path, r.text)
            out[name] = r.json()
    engine.close()
    yield out


@pytest.mark.parametrize(("name", "args"), [
    ("state", ("audit", "customer", "{c}", "--state")),
    ("past", ("audit", "customer", "{c}", "--as-of", "2025-06-01")),
    ("timeline", ("audit", "customer", "{c}")),
    ("health", ("health", "--customer", "{c}", "--as-of", AS_OF)),
    ("gaps", ("gaps", "--as-of", AS_OF)),
    ("gaps_kind", ("gaps", "--as-of", AS_OF, "--kind", "{k}")),
    ("handovers", ("handovers",)),
    ("pending", ("handovers", "--pending", "--older-than", "2d")),
    ("stages", ("stage",)),
    ("metrics", ("metrics", "--from", "2025-01-01", "--to", "2026-01-01")),
])
def test_the_api_answers_what_the_cli_prints(store: str, answers: dict[str, object],
                                             name: str, args: tuple[str, ...]) -> None:
    argv = [a.replace("{c}", str(answers["customer"])).replace("{k}", str(answers["kind"]))
            for a in args]
    printed = json.loads(cli(store, *argv, "--json").stdout)
    if name in ("state", "past"):  # the CLI prints the record as a list of one
        printed = printed[0]
    assert answers[name] == printed
    assert printed  # a comparison of something
