"""A department's first integration with intake, in Python (tested by tests/e2e).

    python docs/examples/intake_client.py 127.0.0.1:50051 <token>

Registers a village, submits a demand for tomorrow, repeats it with the same idempotency key
(same answer, nothing doubled), and shows what a refused request looks like.
"""

import sys
import uuid
from datetime import date, timedelta

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from supply.v1 import common_pb2, intake_pb2, intake_pb2_grpc


def main(target: str, token: str) -> None:
    metadata = [("authorization", f"Bearer {token}"), ("x-correlation-id", str(uuid.uuid4()))]
    with grpc.insecure_channel(target) as channel:
        intake = intake_pb2_grpc.IntakeServiceStub(channel)
        village = intake_pb2.Requester(
            id="V-DEMO-001", kind=intake_pb2.REQUESTER_KIND_VILLAGE, name="示范村",
            township="城关镇", location=common_pb2.GeoPoint(lat=30.27, lon=120.15),
            population=1200, households=400, risk_level=common_pb2.RISK_LEVEL_CONTROLLED)
        try:
            intake.RegisterRequester(intake_pb2.RegisterRequesterRequest(
                idempotency_key="register-V-DEMO-001", requester=village), metadata=metadata)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        request = intake_pb2.SubmitDemandRequest(
            idempotency_key="demand-V-DEMO-001-1", requester_id="V-DEMO-001",
            delivery_day=(date.today() + timedelta(days=1)).isoformat(),
            lines=[common_pb2.ItemLine(item_code="RICE-10KG", quantity=20),
                   common_pb2.ItemLine(item_code="CABBAGE-KG", quantity=150)])
        first = intake.SubmitDemand(request, metadata=metadata)
        again = intake.SubmitDemand(request, metadata=metadata)  # a retry after a timeout, say
        print(f"demand {first.id} for {first.delivery_day}, tier {first.top_tier}; retry gave {again.id}")

        bad = intake_pb2.SubmitDemandRequest(
            idempotency_key=str(uuid.uuid4()), requester_id="V-DEMO-001",
            lines=[common_pb2.ItemLine(item_code="RICE-10KG", quantity=0)])
        try:
            intake.SubmitDemand(bad, metadata=metadata)
        except grpc.RpcError as exc:
            status = rpc_status.from_call(exc)
            for detail in status.details if status else ():
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    info = error_details_pb2.BadRequest()
                    detail.Unpack(info)
                    for v in info.field_violations:
                        print(f"refused: {exc.code().name} field={v.field}: {v.description}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
