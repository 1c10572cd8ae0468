"""One correlation id, sent with a gRPC call, followed to the log line of the process that
consumed the event the call wrote: intake api → outbox → relay → RabbitMQ → allocation worker,
each process logging to its rotated file under SUPPLY_LOG_DIR as `supplyctl up` runs them."""

from __future__ import annotations

import json
import uuid

from services.common.config import load_settings
from services.common.logs import log_path
from services.common.migrate import upgrade
from tests.support import intake
from tests.support.infra import queue_consumers
from tests.support.polling import eventually
from tests.support.processes import ServiceProcess

QUEUE = "evt-intake-requester_registered--allocation.on_requester_registered"


def lines_with(path, cid: str) -> list[dict]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    return [r for r in rows if r.get("correlation_id") == cid]


def test_a_grpc_calls_correlation_id_reaches_the_consumers_log(tmp_path, service_env):
    log_dir = tmp_path / "log"
    env = {**service_env, "SUPPLY_LOG_DIR": str(log_dir)}
    for service in ("intake", "allocation"):
        upgrade(service, load_settings(service, env).database_url)
    procs = [ServiceProcess("allocation", "worker", env, tmp_path).start(),
             ServiceProcess("intake", "relay", env, tmp_path).start()]
    api = intake.start_api(env, tmp_path)
    procs.append(api)
    client = intake.Intake(env)
    try:
        eventually(lambda: queue_consumers(env["AMQP_URL"], QUEUE) > 0, timeout=30,
                   what="allocation worker consuming")
        cid = f"test-{uuid.uuid4().hex[:12]}"
        client.stub.RegisterRequester(
            intake.intake_pb2.RegisterRequesterRequest(
                idempotency_key=intake.key(), requester=intake.village_spec(intake.uid("V"))),
            metadata=[*intake.auth(), ("x-correlation-id", cid)], timeout=20)
        handled = eventually(lambda: lines_with(log_path(log_dir, "allocation", "worker"), cid),
                             timeout=30, what="the allocation worker's log line with the id")
        assert handled[0]["message"] == "event handled"
        assert handled[0]["event_type"] == "requester_registered"
        assert handled[0]["process_kind"] == "worker" and handled[0]["service"] == "allocation"
    finally:
        client.close()
        for p in procs:
            p.stop()
