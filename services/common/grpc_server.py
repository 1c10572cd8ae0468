"""gRPC server bootstrap shared by every service's API process.

- authentication: `authorization: Bearer <token>` metadata → caller identity and role
  (health and reflection are open, as probes need them);
- correlation id from `x-correlation-id` metadata (or a new one), echoed back, put in every log;
- every request's fields checked against their limits (services.common.fields: text length,
  control characters, NFC; days and instants near the county clock; numbers; list sizes; enums)
  before any rule sees it;
- domain errors → status codes (InvalidInput → INVALID_ARGUMENT with a google.rpc.BadRequest
  naming the field; NotFound → NOT_FOUND; RuleRefused → FAILED_PRECONDITION; Conflict →
  ALREADY_EXISTS); anything else → INTERNAL with the correlation id, details only in the log;
- grpc.health.v1 SERVING only while the database and the broker answer and the thread pool can
  take a sync call (NOT_SERVING once every thread has been held, none freed, for a while);
- server reflection; graceful stop on SIGTERM (NOT_SERVING first, then drain).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import inspect
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from services.common.auth import Caller, is_jwt, verify_token
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
from services.common.fields import RequestCheck
from services.common.logs import correlation_id, new_correlation_id
from services.common.tls import add_port

log = logging.getLogger(__name__)


current_caller: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


def caller() -> Caller:
    c = current_caller.get()
    if c is None:
        raise Unauthenticated("no caller")
    return c


def write_fingerprint(request) -> str:
    """What makes two write requests the same request: every field but the idempotency key."""
    from services.common.idempotency import request_fingerprint

    clone = type(request)()
    clone.CopyFrom(request)
    clone.ClearField("idempotency_key")
    return request_fingerprint(clone.SerializeToString(deterministic=True))


_CODES = [
    (InvalidInput, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (RuleRefused, code_pb2.FAILED_PRECONDITION),
    (Conflict, code_pb2.ALREADY_EXISTS),
    (Unauthenticated, code_pb2.UNAUTHENTICATED),
    (PermissionDenied, code_pb2.PERMISSION_DENIED),
]


async def _abort(context: grpc.aio.ServicerContext, exc: DomainError, cid: str) -> None:
    """Abort the call with the status for `exc` (raises grpc.aio.AbortError)."""
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
            rich = rpc_status.to_status(status)
            await context.abort(rich.code, rich.details, (*rich.trailing_metadata, ("x-correlation-id", cid)))
    await context.abort(grpc.StatusCode.UNKNOWN, exc.message)


class _SyncContext:
    """The sync ServicerContext API, for a sync handler running on a pool thread, over the
    call's asyncio context: abort raises as in the sync server, is_active turns False once the
    call ends or is cancelled, the rest is passed through."""

    def __init__(self, context: grpc.aio.ServicerContext, loop: asyncio.AbstractEventLoop):
        self._context = context
        self._loop = loop
        self.active = True

    def _on_loop(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def abort(self, code, details: str = "", trailing_metadata: tuple = ()):
        self._on_loop(self._context.abort(code, details, trailing_metadata))

    def abort_with_status(self, status):
        self.abort(status.code, status.details, status.trailing_metadata)

    def send_initial_metadata(self, metadata):
        self._on_loop(self._context.send_initial_metadata(metadata))

    def is_active(self) -> bool:
        return self.active and not self._context.done()

    def __getattr__(self, name):
        return getattr(self._context, name)


_END = object()


def _iterate(behaviour, request, context):
    return iter(behaviour(request, context))


class _Guard:
    """Authentication, correlation id and error mapping around every method of our services.
    Sync handlers run on the pool with the caller's context variables set around each step (a
    streaming handler's steps may run on different threads); async handlers run on the loop.

    Each method's handler is wrapped once, as `register` adds it (see _GuardedServer), rather
    than by a server interceptor, which grpc.aio runs as extra coroutines on every call."""

    def __init__(self, tokens: dict[str, tuple[str, str, str]], pool: futures.ThreadPoolExecutor,
                 jwt_key: str = "", check: Callable[[object], None] = lambda request: None):
        self.tokens = tokens
        self.pool = pool
        self.jwt_key = jwt_key  # '' refuses every signed token
        self.check = check  # the request's field limits (services.common.fields), before any rule
        self.wrapped: dict[str, tuple] = {}

    def _authenticate(self, metadata: dict[str, str]) -> Caller:
        """A signed token (JWT: three dot-separated parts) is verified with the shared key; any
        other token is looked up among the configured static tokens."""
        auth = metadata.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata / 缺少访问令牌")
        if is_jwt(token):
            return verify_token(self.jwt_key, token)
        who = self.tokens.get(token)
        if who is None:
            raise Unauthenticated("unknown or revoked token / 令牌无效")
        return Caller(*who)

    def handler(self, method: str, handler):
        """`handler` of `method` (/package.Service/Method), guarded."""
        cached = self.wrapped.get(method)
        if cached is None or cached[0] is not handler:
            cached = self.wrapped[method] = handler, self._wrap(method, handler)
        return cached[1]

    async def _start(self, context) -> str:
        """Set the call's correlation id and caller (in this call's task); abort if unknown."""
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        cid = metadata.get("x-correlation-id") or new_correlation_id()
        correlation_id.set(cid)
        context.set_trailing_metadata((("x-correlation-id", cid),))
        try:
            current_caller.set(self._authenticate(metadata))
        except Unauthenticated as exc:
            await _abort(context, exc, cid)
        return cid

    @staticmethod
    async def _fail(method: str, context, exc: Exception, cid: str):
        if isinstance(exc, DomainError):
            log.info("rpc refused", extra={"method": method, "error": exc.message})
            await _abort(context, exc, cid)
        log.error("rpc failed", extra={"method": method}, exc_info=exc)
        await context.abort(grpc.StatusCode.INTERNAL,
                            f"internal error; correlation id {cid} / 内部错误，请凭编号联系管理员")

    def _wrap(self, method: str, handler):
        pool, start, fail, check = self.pool, self._start, self._fail, self.check

        def unary(behaviour):
            if inspect.iscoroutinefunction(behaviour):
                answer = behaviour
            else:
                async def answer(request, context):
                    loop = asyncio.get_running_loop()
                    sync = _SyncContext(context, loop)
                    try:
                        return await loop.run_in_executor(
                            pool, contextvars.copy_context().run, behaviour, request, sync)
                    finally:
                        sync.active = False

            async def call(request, context):
                cid = await start(context)
                try:
                    check(request)
                    return await answer(request, context)
                except (grpc.aio.AbortError, grpc.RpcError):
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status for the caller
                    await fail(method, context, exc, cid)
            return call

        def stepped(behaviour):
            """A sync generator's steps, each on the pool in the call's context (set by start)."""
            async def messages(request, context):
                loop = asyncio.get_running_loop()
                sync = _SyncContext(context, loop)
                steps = contextvars.copy_context()
                try:
                    iterator = await loop.run_in_executor(pool, steps.run, _iterate, behaviour, request, sync)
                    while (message := await loop.run_in_executor(pool, steps.run, next, iterator, _END)) is not _END:
                        yield message
                finally:
                    sync.active = False
            return messages

        def streaming(behaviour):
            # an async generator runs on the loop, in the call's task (so in its context), and
            # holds no thread while it waits; a sync one runs step by step on the pool
            messages = behaviour if inspect.isasyncgenfunction(behaviour) else stepped(behaviour)

            async def call(request, context):
                cid = await start(context)
                try:
                    check(request)
                    # closed as the call ends however it ends, so its `finally` runs at once
                    async with contextlib.aclosing(messages(request, context)) as stream:
                        async for message in stream:
                            yield message
                except (grpc.aio.AbortError, grpc.RpcError):
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status for the caller
                    await fail(method, context, exc, cid)
            return call

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                unary(handler.unary_unary), handler.request_deserializer,
                _passing_bytes(handler.response_serializer))
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                streaming(handler.unary_stream), handler.request_deserializer, handler.response_serializer)
        raise NotImplementedError(f"{method}: client-streaming methods are not served here")


def _passing_bytes(serialize: Callable | None) -> Callable | None:
    """A unary method may answer with its response already serialized (SubmitDemand's answer
    comes from the group commit as the bytes it stored for its idempotency key)."""
    if serialize is None:
        return None

    def serialized(message) -> bytes:
        return message if isinstance(message, bytes) else serialize(message)
    return serialized


class _GuardedGenericHandler(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, guard: _Guard):
        self.inner = inner
        self.guard = guard

    def service(self, handler_call_details):
        handler = self.inner.service(handler_call_details)
        return None if handler is None else self.guard.handler(handler_call_details.method, handler)


class _GuardedServer:
    """The server as `register` sees it: every handler added through it is guarded. Health and
    reflection are added to the server itself, so they stay open to probes."""

    def __init__(self, server: grpc.aio.Server, guard: _Guard):
        self._server = server
        self._guard = guard

    def add_generic_rpc_handlers(self, handlers) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_GuardedGenericHandler(h, self._guard) for h in handlers))

    def add_registered_method_handlers(self, service: str, handlers: dict) -> None:
        self._server.add_registered_method_handlers(
            service, {m: self._guard.handler(f"/{service}/{m}", h) for m, h in handlers.items()})

    def __getattr__(self, name):
        return getattr(self._server, name)


class Readiness:
    """Runs the dependency checks (blocking calls, so on a thread) and reports the health status
    they give: SERVING only while every check passes."""

    def __init__(self, checks: dict[str, Callable[[], None]]):
        self.checks = checks
        self.failing: dict[str, str] = {}

    def check_once(self) -> int:
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
        return (health_pb2.HealthCheckResponse.NOT_SERVING if failing
                else health_pb2.HealthCheckResponse.SERVING)


class _CountingPool(futures.ThreadPoolExecutor):
    """The API's thread pool, counting the work it holds (queued or running) and the work it has
    finished. Counted in the pool rather than around the awaits: a call whose client gave up
    still holds its thread until the function returns. Two uncontended lock round trips per
    task, no extra hand-off between threads."""

    def __init__(self, threads: int):
        super().__init__(max_workers=threads, thread_name_prefix="rpc")
        self.threads = threads
        self.held = 0
        self.finished = 0
        self._counts = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        with self._counts:
            self.held += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:  # shut down: nothing was queued
            with self._counts:
                self.held -= 1
            raise
        future.add_done_callback(self._done)  # also for work cancelled before it started
        return future

    def _done(self, _future) -> None:
        with self._counts:
            self.held -= 1
            self.finished += 1


class Saturation:
    """Whether the pool can take a sync call. Saturated once every thread has been held (queued
    work included) and not one piece of work has finished for `after` seconds: a busy pool that
    keeps finishing calls still answers, one whose threads all wait (a database that hangs, slow
    calls, sync streams) does not. Over as soon as something finishes or a thread is free."""

    def __init__(self, pool: _CountingPool, after: float):
        self.pool = pool
        self.after = after
        self.saturated = False
        self._full_since: float | None = None  # seen full with `_finished` finished since then
        self._finished = 0

    def check(self, now: float) -> bool:
        """Look at the pool now; True when the state changed (and was logged)."""
        held, finished, threads = self.pool.held, self.pool.finished, self.pool.threads
        if held < threads:
            self._full_since = None
        elif self._full_since is None or finished != self._finished:
            self._full_since, self._finished = now, finished
        saturated = self._full_since is not None and now - self._full_since >= self.after
        if saturated == self.saturated:
            return False
        self.saturated = saturated
        if saturated:
            log.warning("grpc api saturated: NOT_SERVING until a thread is free", extra={
                "reason": f"all {threads} threads (SUPPLY_GRPC_THREADS) held, none freed for "
                          f"{now - self._full_since:.1f} s", "held": held, "threads": threads})
        else:
            log.info("grpc api no longer saturated", extra={
                "reason": "a call finished" if held >= threads else "a thread is free",
                "held": held, "threads": threads})
        return True


def serve(settings: Settings, register: Callable[[grpc.aio.Server], list[str]],
          checks: dict[str, Callable[[], None]], *, max_workers: int = 16,
          on_stop: Callable[[], None] | None = None, readiness_interval: float = 5.0,
          saturated_after: float = 2.0) -> None:
    """Run a gRPC server until SIGTERM/SIGINT. `register` adds servicers, returns full names.

    The server is grpc.aio: a sync servicer method runs on a pool of `SUPPLY_GRPC_THREADS`
    threads, an `async def` one on the event loop (for hot paths that must not hand every call
    between threads; see docs/adr/0004). Health turns NOT_SERVING while the pool is saturated
    for `saturated_after` seconds (Saturation)."""
    # Every call allocates thousands of short-lived objects, so the cyclic collector ran every
    # 700 allocations and rescanned everything imported at start-up: freeze that and collect the
    # young generation every 20 000 (+6 – 9 % SubmitDemand/s, ADR 0004)
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
    asyncio.run(_serve(settings, register, checks,
                       settings.grpc_threads or max_workers, on_stop,
                       readiness_interval, saturated_after))


async def _serve(settings: Settings, register, checks, max_workers: int, on_stop,
                 readiness_interval: float, saturated_after: float) -> None:
    loop = asyncio.get_running_loop()
    pool = _CountingPool(max_workers)
    loop.set_default_executor(pool)
    server = grpc.aio.server(
        migration_thread_pool=pool,
        options=[("grpc.max_receive_message_length", 32 * 1024 * 1024),
                 ("grpc.so_reuseport", int(settings.grpc_reuseport))],
    )
    guard = _Guard(settings.auth_tokens, pool, settings.jwt_key,
                   RequestCheck(settings.clock(), settings.timezone))
    names = register(_GuardedServer(server, guard))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server)
    readiness = Readiness(checks)
    saturation = Saturation(pool, saturated_after)

    async def report() -> None:
        status = (health_pb2.HealthCheckResponse.NOT_SERVING if readiness.failing or saturation.saturated
                  else health_pb2.HealthCheckResponse.SERVING)
        for name in ("", *names):
            await health_servicer.set(name, status)

    async def report_readiness() -> None:
        await loop.run_in_executor(pool, readiness.check_once)
        await report()

    await report_readiness()
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    if add_port(server, address, settings.grpc_tls) == 0:
        raise SystemExit(f"cannot listen on {address} (port taken?)")
    await server.start()
    log.info("grpc api listening", extra={"address": address, "services": names,
                                          "tls": settings.grpc_tls.enabled,
                                          "client_certificates": settings.grpc_tls.client_ca is not None})
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def keep_reporting() -> None:
        while True:
            await asyncio.sleep(readiness_interval)
            await report_readiness()

    async def watch_saturation() -> None:  # on the loop: it must not need a thread of the pool
        while True:
            await asyncio.sleep(min(0.25, saturated_after / 4))
            if saturation.check(time.monotonic()):
                await report()

    reporting = asyncio.create_task(keep_reporting())  # a hanging check does not delay the stop
    watching = asyncio.create_task(watch_saturation())
    await stop.wait()
    log.info("grpc api stopping")
    reporting.cancel()
    watching.cancel()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=10)
    if on_stop:
        on_stop()
    pool.shutdown(wait=False, cancel_futures=True)
