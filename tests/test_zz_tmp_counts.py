from collections import Counter
from test_bigquery_sql import googlesql, replay  # noqa: F401


def test_counts(replay) -> None:  # type: ignore[no-untyped-def]
    by_label = Counter(v.label for v in replay.verdicts)
    kinds = Counter((v.label, v.kind) for v in replay.verdicts if v.label in ("daily", "monitor"))
    sent = Counter(
        (s.label, "load" if s.load_schema is not None else "query")
        for s in replay.shadow.client.sent
    )
    in_tx = Counter(v.kind for v in replay.verdicts if v.in_transaction)
    print("\nBY_LABEL", dict(by_label))
    print("REFUSED", sum(not v.ok for v in replay.verdicts), "TOTAL", len(replay.verdicts))
    print("SENT", dict(sent))
    print("KINDS", dict(kinds))
    print("IN_TX", dict(in_tx))
    print("ALL_KINDS", dict(Counter(v.kind for v in replay.verdicts)))
