"""The services as the console calls them: their public gRPC APIs only, always as the
signed-in person (a short-lived signed token minted for them), errors turned into something a
page can show next to a field or in a banner."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from supply.v1 import (
    allocation_pb2_grpc,
    intake_pb2_grpc,
    logistics_pb2_grpc,
    market_pb2_grpc,
    monitoring_pb2_grpc,
)

from services.common.auth import mint_token
from services.common.config import PLAINTEXT, GrpcTls
from services.common.grpc_client import open_channel
from services.common.logs import correlation_id

STUBS = {
    "intake": intake_pb2_grpc.IntakeServiceStub,
    "allocation": allocation_pb2_grpc.AllocationServiceStub,
    "logistics": logistics_pb2_grpc.LogisticsServiceStub,
    "monitoring": monitoring_pb2_grpc.MonitoringServiceStub,
    "market": market_pb2_grpc.MarketServiceStub,
}
SERVICE_NAMES = {"intake": ("需求收集服务", "intake"), "allocation": ("调配服务", "allocation"),
                 "logistics": ("仓储配送服务", "logistics"), "monitoring": ("监测服务", "monitoring"),
                 "market": ("商超保供服务", "market")}
UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


def new_console_correlation_id() -> str:
    """One per click (the web middleware sets it for the request); every call it makes sends it."""
    return "console-" + uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class Person:
    """Who the console acts for: the signed-in user (or the console itself for public pages)."""

    username: str
    role: str
    scope: str = ""


class ServiceError(Exception):
    """A call a service refused or could not answer. `field` names the request field at fault
    (google.rpc.BadRequest), `rule` the rule code (google.rpc.ErrorInfo)."""

    def __init__(self, service: str, code: grpc.StatusCode, message: str, field: str = "",
                 rule: str = "", correlation_id: str = ""):
        super().__init__(f"{service}: {code.name}: {message}")
        self.service = service
        self.code = code
        self.message = message
        self.field = field
        self.rule = rule
        self.correlation_id = correlation_id

    @property
    def unavailable(self) -> bool:
        return self.code in UNAVAILABLE


def _error(service: str, exc: grpc.aio.AioRpcError, cid: str) -> ServiceError:
    field = rule = ""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    br = error_details_pb2.BadRequest()
                    detail.Unpack(br)
                    if br.field_violations:
                        field = br.field_violations[0].field
                elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    rule = info.reason
    message = exc.details() or exc.code().name
    if exc.code() in UNAVAILABLE:
        message = "not answering"
    return ServiceError(service, exc.code(), message, field, rule, cid)


class Services:
    """One channel per service for the whole process; each call carries the person's token."""

    def __init__(self, targets: dict[str, str], jwt_key: str, *, timeout: float = 8.0,
                 token_ttl_s: int = 300, tls: GrpcTls = PLAINTEXT):
        self.targets = targets
        self.tls = tls
        self.jwt_key = jwt_key
        self.timeout = timeout
        self.token_ttl_s = token_ttl_s
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, object] = {}
        self._tokens: dict[Person, tuple[str, float]] = {}

    def _stub(self, service: str):
        stub = self._stubs.get(service)
        if stub is None:
            channel = self._channels[service] = open_channel(
                self.targets[service], self.tls, aio=True,
                options=[("grpc.max_receive_message_length", 32 * 1024 * 1024)])
            stub = self._stubs[service] = STUBS[service](channel)
        return stub

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()

    def token(self, person: Person) -> str:
        """The person's signed token, minted again when less than a fifth of its life is left."""
        now = time.time()
        cached = self._tokens.get(person)
        if cached and cached[1] - now > self.token_ttl_s / 5:
            return cached[0]
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        token = mint_token(self.jwt_key, sub=person.username, role=person.role, scope=person.scope,
                           ttl_s=self.token_ttl_s, now=now)
        self._tokens[person] = (token, now + self.token_ttl_s)
        return token

    def metadata(self, person: Person, cid: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token(person)}"), ("x-correlation-id", cid))

    async def call(self, person: Person, service: str, method: str, request, *,
                   timeout: float | None = None):
        cid = correlation_id.get() or new_console_correlation_id()
        rpc = getattr(self._stub(service), method)
        try:
            return await rpc(request, metadata=self.metadata(person, cid), timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise _error(service, exc, cid) from None

    async def all_pages(self, person: Person, service: str, method: str, request, field: str, *,
                        page_size: int = 500, limit: int = 20_000) -> list:
        """Every item of a paged list call (request.page / answer.page.next_page_token), at most `limit`."""
        items: list = []
        request.page.page_size = page_size
        while True:
            answer = await self.call(person, service, method, request)
            items.extend(getattr(answer, field))
            token = answer.page.next_page_token
            if not token or len(items) >= limit:
                return items[:limit]
            request.page.page_token = token

    def stream(self, person: Person, service: str, method: str, request, *, timeout: float | None = None):
        """A server-streaming call (its messages: `async for m in call`)."""
        cid = correlation_id.get() or new_console_correlation_id()
        return getattr(self._stub(service), method)(request, metadata=self.metadata(person, cid),
                                                      timeout=timeout)

    async def collect(self, person: Person, service: str, method: str, request, *,
                      timeout: float | None = None) -> list:
        """Every message of a server-streaming call."""
        call = self.stream(person, service, method, request, timeout=timeout or self.timeout * 4)
        try:
            return [m async for m in call]
        except grpc.aio.AioRpcError as exc:
            raise _error(service, exc, "") from None
