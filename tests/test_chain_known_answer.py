"""Known-answer digests: what the hash chain covers is fixed, not what writer and verifier agree.

The expected values were computed once, independently of the package, with ``hashlib`` from
the digest input documented in docs/audit.md:

    event:   SHA-256(prev_log || prev_aggregate || "<uuid>\\0<version>\\0<topic>\\0" || state)
    setting: SHA-256(prev || "<seq>\\0<key>\\0<origin>\\0<log position>\\0<recorded_at>\\0"
                     || value)

Changing what a digest covers (dropping the topic, the version, a predecessor...) changes these
values and fails the tests, even when the writer and ``audit verify`` are changed together.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.persistence import StoredEvent
from test_recorders import chain_rows

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.audit.verify import verify
from lifecycle_es.stores.chain import LOG_SCOPE, ZERO, Chain, digest, setting_digest

OID = "6f1b2a4e-9c3d-4e5f-8a7b-0c1d2e3f4a5b"
EVENTS = [  # one customer's first two events, the first two of the log
    (1, "lifecycle_es.domain.customer:Customer.Registered", b'{"customer":"acme","name":"Acme"}'),
    (2, "lifecycle_es.domain.customer:Customer.CheckedIn", b'{"customer":"acme"}'),
]
D1 = "217fc899964c0b20f5674809eb112a299e487e05cd708929f34cc0449ce0dff1"
D2 = "5bf57950ec43c48d3b133e76e94945a893abf0d8625efb4b2f17217bf3a02efd"
SETTING = "19670875212ff66b62637aceebec38a6b06ff7deb0ca7834c80b262e49d8d16d"


def test_event_digest_known_answer() -> None:
    (v1, t1, s1), (v2, t2, s2) = EVENTS
    d1 = digest(ZERO, ZERO, OID, v1, t1, s1)
    assert d1.hex() == D1
    assert digest(d1, d1, UUID(OID), v2, t2, s2).hex() == D2  # UUID or text: the same


def test_writer_batch_hashing_known_answer() -> None:
    chain = Chain()
    chain.start(None)
    assert [d.hex() for d in chain.link([1, 2], [(OID, v, t, s) for v, t, s in EVENTS])] == [
        D1, D2]


def test_stored_digests_known_answer(durable_store_url: str) -> None:
    """What the recorders store on SQLite and PostgreSQL, and what verify accepts."""
    engine = LifecycleEngine(durable_store_url)
    engine.writer.recorder.insert_events([StoredEvent(originator_id=UUID(OID), originator_version=v,
                                               topic=t, state=s) for v, t, s in EVENTS])
    links, heads = chain_rows(engine)
    assert [(r[0], r[2], bytes(r[3]).hex()) for r in links] == [(1, 1, D1), (2, 2, D2)]
    assert bytes(heads[LOG_SCOPE][2]).hex() == D2 and bytes(heads[OID][2]).hex() == D2
    report = verify(engine)
    assert report.clean and report.head is not None and report.head.digest == D2
    engine.close()


def test_setting_digest_known_answer() -> None:
    assert setting_digest(ZERO, 1, "stage_model", '{"name":"classic"}', "set", 0,
                          "2024-01-01T00:00:00.000000+00:00").hex() == SETTING
