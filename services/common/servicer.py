"""What every service's gRPC servicer shares: a write runs once per (caller, method, idempotency
key), and a repeat gets the stored response (services.common.idempotency run_idempotent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from services.common.auth import Caller
from services.common.group_commit import GroupCommitter
from services.common.grpc_server import caller, write_fingerprint
from services.common.idempotency import run_idempotent, stored_response


class WriteServicer:
    """Base of a servicer with `ctx` (its uow() opens a unit of work). Given a `committer`,
    writes go through its group commit instead of a transaction each."""

    ctx: Any
    committer: GroupCommitter | None = None

    def _write(self, method: str, request: Message, response_type: type[Message],
               work: Callable[[Caller, Any], Message]) -> Message:
        actor = caller()
        scope, key, fingerprint = _idempotency(actor, method, request)
        if self.committer is None:
            data = run_idempotent(self.ctx.uow(), scope, key, fingerprint,
                                  lambda uow: work(actor, uow).SerializeToString())
            return response_type.FromString(data)
        built: dict[str, tuple[Message, bytes]] = {}

        def run(uow) -> bytes:
            message = work(actor, uow)
            built["answer"] = (message, message.SerializeToString())
            return built["answer"][1]

        data = self.committer.run(scope, key, fingerprint, run)
        if "answer" in built and built["answer"][1] == data:
            return built["answer"][0]  # answered now: no need to parse it back
        return response_type.FromString(data)

    def _answered(self, method: str, request: Message) -> bytes | None:
        """The response already stored for this write, None if none (Conflict if its key was
        used for a different request): a check before a write's slow part."""
        scope, key, fingerprint = _idempotency(caller(), method, request)
        with self.ctx.uow() as uow:
            return stored_response(uow, scope, key, fingerprint)


def _idempotency(actor: Caller, method: str, request: Message) -> tuple[str, str, str]:
    return f"{actor.identity}:{method}", request.idempotency_key, write_fingerprint(request)
