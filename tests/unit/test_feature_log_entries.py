"""Feature-log entries become table rows; anything else is poison for the dead letters, and
never stops the rows around it (the worker's feature-log consumer must keep going)."""

from __future__ import annotations

import orjson

from streams.feature_log import rows

ENTRY = {"payment_id": "pay_1", "merchant_id": "m_1", "message_id": "msg_1",
         "requested_at": "2026-03-02T09:00:00+00:00", "model_version": "fraud-v1",
         "features": {"amount_log": 7.8}, "fraud_score": 12, "outcome": "approved",
         "degraded": False}


def test_entries_become_rows_and_the_first_entry_of_a_payment_wins() -> None:
    later = {**ENTRY, "message_id": "msg_2", "fraud_score": 99}
    found, poison = rows([orjson.dumps(ENTRY), orjson.dumps(later)])
    assert poison == {}
    assert [(row[0], row[2], row[6]) for row in found] == [("pay_1", "msg_1", 12)]


def test_poison_is_reported_by_position_with_a_reason_and_the_rest_still_land() -> None:
    missing = {key: value for key, value in ENTRY.items() if key != "features"}
    values = [b"not json", None, orjson.dumps([1, 2]), orjson.dumps(missing),
              orjson.dumps({**ENTRY, "features": [1.0]}), orjson.dumps({**ENTRY, "payment_id": 7}),
              orjson.dumps({**ENTRY, "payment_id": "pay_2"})]
    found, poison = rows(values)
    assert sorted(poison) == [0, 1, 2, 3, 4, 5]
    assert all(reason.startswith("not a feature-log entry") for reason in poison.values())
    assert [row[0] for row in found] == ["pay_2"]
