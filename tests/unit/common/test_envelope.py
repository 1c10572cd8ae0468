import json

import pytest

from services.common.messaging import SUBSCRIPTIONS, EnvelopeError, make_envelope, parse_envelope


def test_envelope_has_the_contract_fields():
    env = make_envelope("intake", "demand_registered", {"demand_id": "D1"}, correlation_id="c1")
    assert set(env) == {"event_id", "event_type", "occurred_at", "source", "schema_version",
                        "correlation_id", "payload"}
    assert env["occurred_at"].endswith("Z")
    assert parse_envelope(json.dumps(env).encode()) == env


@pytest.mark.parametrize("body, message", [
    (b"not json", "not JSON"),
    (b"[1,2]", "must be a JSON object"),
    (json.dumps({"event_id": "x"}), "missing event_type"),
    ({**make_envelope("a", "b", {}), "event_id": "nope"}, "not a UUID"),
    ({**make_envelope("a", "b", {}), "payload": []}, "payload must be an object"),
    ({**make_envelope("a", "b", {}), "schema_version": "1"}, "schema_version"),
])
def test_malformed_envelopes_are_refused_with_a_reason(body, message):
    with pytest.raises(EnvelopeError, match=message):
        parse_envelope(body)


def test_queue_names_follow_nameko_service_pool_naming():
    sub = next(s for s in SUBSCRIPTIONS if s.consumer == "intake")
    assert sub.queue == f"evt-{sub.source}-{sub.event_type}--intake.{sub.method}"
