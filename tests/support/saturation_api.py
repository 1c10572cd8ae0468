"""A gRPC API process for tests of services/common/grpc_server.py itself: `serve()` with a
test-only service and no dependency to check, so that only the pool decides its health.

    python tests/support/saturation_api.py <port>

Service `test.Saturation` (raw bytes, no proto), behind the same guard as every service:
- Block (sync, on the pool): holds its thread until Release is called (at most 60 s);
- Echo (sync, on the pool): answers its request at once;
- Release (async, on the loop, so it answers while every thread is held): lets every Block go.
Settings from the environment (SUPPLY_AUTH_TOKENS, SUPPLY_GRPC_THREADS …).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import replace

import grpc

from services.common.config import load_settings
from services.common.grpc_server import serve
from services.common.logs import setup_logging

SERVICE = "test.Saturation"


def main(port: int) -> None:
    settings = replace(load_settings("tools"), grpc_port=port)
    setup_logging("tests", "saturation-api", settings.log_level)
    released = threading.Event()

    def block(request: bytes, context) -> bytes:
        released.wait(60)
        return b"released"

    def echo(request: bytes, context) -> bytes:
        return request

    async def release(request: bytes, context) -> bytes:
        released.set()
        return b""

    def register(server) -> list[str]:
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
            "Block": grpc.unary_unary_rpc_method_handler(block),
            "Echo": grpc.unary_unary_rpc_method_handler(echo),
            "Release": grpc.unary_unary_rpc_method_handler(release),
        }),))
        return [SERVICE]

    serve(settings, register, {}, on_stop=released.set)


if __name__ == "__main__":
    main(int(sys.argv[1]))
