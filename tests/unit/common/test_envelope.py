import json

import pytest

from services.common.messaging import (
    EnvelopeError,
    all_subscriptions,
    make_envelope,
    parse_envelope,
)


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
    sub = next(s for s in all_subscriptions() if s.consumer == "intake")
    assert sub.queue == f"evt-{sub.source}-{sub.event_type}--intake.{sub.method}"


def test_every_subscription_has_a_matching_nameko_handler():
    """The topology the relay declares must be the queues the workers consume."""
    import ast
    from pathlib import Path

    for sub in all_subscriptions():
        worker = Path(f"services/{sub.consumer}/entrypoints/worker.py").read_text()
        tree = ast.parse(worker)
        handlers = {
            (node.name, dec.args[0].value, dec.args[1].value)
            for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            for dec in node.decorator_list
            if isinstance(dec, ast.Call) and getattr(dec.func, "id", "") == "event_handler"
        }
        assert (sub.method, sub.source, sub.event_type) in handlers, sub
