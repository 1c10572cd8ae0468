"""gRPC server bootstrap shared by every service's API process.

- authentication: `authorization: Bearer <token>` metadata → caller identity and role
  (health and reflection are open, as probes need them);
- correlation id from `x-correlation-id` metadata (or a new one), echoed back, put in every log;
- domain errors → status codes (InvalidInput → INVALID_ARGUMENT with a google.rpc.BadRequest
  naming the field; NotFound → NOT_FOUND; RuleRefused → FAILED_PRECONDITION; Conflict →
  ALREADY_EXISTS); anything else → INTERNAL with the correlation id, details only in the log;
- grpc.health.v1 SERVING only while the database and the broker answer;
- server reflection; graceful stop on SIGTERM (NOT_SERVING first, then drain).
"""

from __future__ import annotations

import contextvars
import logging
import signal
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from services.common.config import Settings
from services.common.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RuleRefused,
    Unauthenticated,
)
from services.common.logs import correlation_id, new_correlation_id

log = logging.getLogger(__name__)

OPEN_SERVICES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Caller:
    identity: str
    role: str
    scope: str = ""  # the requester id a village worker or unit head acts for; '' = county-wide


current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


def caller() -> Caller:
    c = current_caller.get()
    if c is None:
        raise Unauthenticated("no caller")
    return c


def write_fingerprint(request) -> str:
    """What makes two write requests the same request: every field but the idempotency key."""
    from services.common.db import request_fingerprint

    clone = type(request)()
    clone.CopyFrom(request)
    clone.ClearField("idempotency_key")
    return request_fingerprint(clone.SerializeToString(deterministic=True))


def require_role(*roles: str) -> Caller:
    """The current caller, if its role is one of `roles` (admin may do anything)."""
    c = caller()
    if c.role != "admin" and c.role not in roles:
        raise PermissionDenied(f"role {c.role!r} may not do this; needs one of {', '.join(roles)}")
    return c


_CODES = [
    (InvalidInput, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (RuleRefused, code_pb2.FAILED_PRECONDITION),
    (Conflict, code_pb2.ALREADY_EXISTS),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
    (PermissionDenied, code_pb2.PERMISSION_DENIED),
]


def _abort(context: grpc.ServicerContext, exc: DomainError) -> None:
    for cls, rpc_code in _CODES:
        if isinstance(exc, cls):
            status = status_pb2.Status(code=rpc_code, message=exc.message)
            if isinstance(exc, InvalidInput):
                detail = any_pb2.Any()
                detail.Pack(error_details_pb2.BadRequest(field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=exc.field, description=exc.message)
                ]))
                status.details.append(detail)
            elif isinstance(exc, RuleRefused):
                detail = any_pb2.Any()
                detail.Pack(error_details_pb2.ErrorInfo(reason=exc.rule, domain="supply.v1"))
                status.details.append(detail)
            context.abort_with_status(rpc_status.to_status(status))
            return
    context.abort(grpc.StatusCode.UNKNOWN, exc.message)


class _Interceptor(grpc.ServerInterceptor):
    def __init__(self, tokens: dict[str, tuple[str, str, str]]):
        self.tokens = tokens

    def _authenticate(self, metadata: dict[str, str]) -> Caller:
        auth = metadata.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata / 缺少访问令牌")
        who = self.tokens.get(token.strip())
        if who is None:
            raise Unauthenticated("unknown or revoked token / 令牌无效")
        return Caller(*who)

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        method = details.method
        metadata = {k: v for k, v in details.invocation_metadata if isinstance(v, str)}
        interceptor = self

        def wrap(behaviour, streaming_response: bool):
            def call(request_or_iterator, context):
                cid = metadata.get("x-correlation-id") or new_correlation_id()
                cid_token = correlation_id.set(cid)
                context.set_trailing_metadata((("x-correlation-id", cid),))
                try:
                    caller_token = current_caller.set(interceptor._authenticate(metadata))
                except Unauthenticated as exc:
                    correlation_id.reset(cid_token)
                    _abort(context, exc)
                    return None
                try:
                    if streaming_response:
                        return _guard_stream(behaviour(request_or_iterator, context), context, method)
                    return behaviour(request_or_iterator, context)
                except DomainError as exc:
                    log.info("rpc refused", extra={"method": method, "error": exc.message})
                    _abort(context, exc)
                except grpc.RpcError:
                    raise
                except Exception:
                    log.exception("rpc failed", extra={"method": method})
                    context.abort(grpc.StatusCode.INTERNAL,
                                  f"internal error; correlation id {cid} / 内部错误，请凭编号联系管理员")
                finally:
                    if not streaming_response:
                        current_caller.reset(caller_token)
                        correlation_id.reset(cid_token)
            return call

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                wrap(handler.unary_unary, False), handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                wrap(handler.unary_stream, True), handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                wrap(handler.stream_unary, False), handler.request_deserializer, handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(
            wrap(handler.stream_stream, True), handler.request_deserializer, handler.response_serializer)


def _guard_stream(iterator: Iterable, context: grpc.ServicerContext, method: str):
    try:
        yield from iterator
    except DomainError as exc:
        _abort(context, exc)
    except grpc.RpcError:
        raise
    except Exception:
        log.exception("streaming rpc failed", extra={"method": method})
        context.abort(grpc.StatusCode.INTERNAL, "internal error / 内部错误")


class Readiness:
    """Sets the health status from dependency checks, re-run every `interval` seconds."""

    def __init__(self, servicer: health.HealthServicer, names: list[str],
                 checks: dict[str, Callable[[], None]], interval: float = 5.0):
        self.servicer = servicer
        self.names = names
        self.checks = checks
        self.interval = interval
        self.stop = threading.Event()
        self.failing: dict[str, str] = {}

    def check_once(self) -> bool:
        failing = {}
        for name, check in self.checks.items():
            try:
                check()
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                failing[name] = repr(exc)
        if failing != self.failing:
            log.warning("readiness changed", extra={"failing": failing}) if failing else \
                log.info("ready: all dependencies answer")
        self.failing = failing
        status = (health_pb2.HealthCheckResponse.NOT_SERVING if failing
                  else health_pb2.HealthCheckResponse.SERVING)
        for name in self.names:
            self.servicer.set(name, status)
        return not failing

    def run(self) -> None:
        while not self.stop.is_set():
            self.check_once()
            self.stop.wait(self.interval)


def serve(settings: Settings, register: Callable[[grpc.Server], list[str]],
          checks: dict[str, Callable[[], None]], *, max_workers: int = 16,
          on_stop: Callable[[], None] | None = None) -> None:
    """Run a gRPC server until SIGTERM/SIGINT. `register` adds servicers, returns full names."""
    max_workers = int(settings.extra.get("SUPPLY_GRPC_THREADS", max_workers))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="rpc"),
        interceptors=[_Interceptor(settings.auth_tokens)],
        options=[("grpc.max_receive_message_length", 32 * 1024 * 1024),
                 # several API processes of a service may share its port (SUPPLY_GRPC_REUSEPORT=1)
                 ("grpc.so_reuseport", 1 if settings.extra.get("SUPPLY_GRPC_REUSEPORT") == "1" else 0)],
    )
    names = register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server)
    readiness = Readiness(health_servicer, ["", *names], checks)
    readiness.check_once()
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"cannot listen on {address} (port taken?)")
    server.start()
    threading.Thread(target=readiness.run, name="readiness", daemon=True).start()
    log.info("grpc api listening", extra={"address": address, "services": names})
    stopped = threading.Event()

    def _stop(signum, frame):
        log.info("grpc api stopping", extra={"signal": signum})
        readiness.stop.set()
        health_servicer.enter_graceful_shutdown()
        server.stop(grace=10).wait()
        if on_stop:
            on_stop()
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stopped.wait()
