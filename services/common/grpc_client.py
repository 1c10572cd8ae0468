"""The one way a client inside the system opens a gRPC channel: TLS when the deployment has it
(SUPPLY_GRPC_TLS_CA to verify, a client certificate for mTLS), plaintext otherwise.

`python -m services.common.grpc_client SERVICE` is the health probe of compose and Kubernetes:
exit 0 when SERVICE's API answers SERVING over the configured channel, 1 otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import grpc

from services.common.config import GrpcTls
from services.common.tls import channel_credentials


def open_channel(target: str, tls: GrpcTls, *, aio: bool = False,
                 options: Sequence[tuple[str, object]] = ()) -> grpc.Channel | grpc.aio.Channel:
    """A channel to `target` (host:port), secure when `tls` says the deployment uses TLS."""
    credentials = channel_credentials(tls)
    options = list(options)
    kind = grpc.aio if aio else grpc
    if credentials is None:
        return kind.insecure_channel(target, options=options)
    return kind.secure_channel(target, credentials, options=options)


def probe(service: str, timeout: float = 3.0) -> str:
    """SERVICE's health as its status name, or why it could not be asked."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from services.common.config import load_settings

    settings = load_settings("tools")
    try:
        with open_channel(settings.grpc_target(service), settings.grpc_tls) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    except grpc.RpcError as exc:
        return f"unreachable ({exc.code().name})"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m services.common.grpc_client SERVICE")
    status = probe(sys.argv[1])
    print(status)
    sys.exit(0 if status == "SERVING" else 1)
