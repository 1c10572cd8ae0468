"""Idempotency keys of write RPCs: each (scope, key) runs its write once and answers every
repeat with the stored response; a key reused for a different request is a Conflict. The keys
live in each service's `idempotency_keys` platform table (services/common/db.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from services.common.db import UnitOfWork, insert_many, utcnow
from services.common.errors import Conflict, InvalidInput


def request_fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_lookups: dict[Any, Any] = {}


def _idempotency_lookup(table: Table):
    """The lookup statement, built once per table (SQLAlchemy then reuses its compiled form)."""
    if id(table) not in _lookups:
        _lookups[id(table)] = select(table.c.request_hash, table.c.response).where(
            table.c.scope == bindparam("scope"), table.c.key == bindparam("key"))
    return _lookups[id(table)]


def check_idempotency_key(key: str) -> None:
    if not key or not key.strip():
        raise InvalidInput("idempotency_key", "required for every write (any unique string, ≤ 200 chars)")
    if len(key) > 200:
        raise InvalidInput("idempotency_key", "longer than 200 characters")


def stored_response(uow: UnitOfWork, scope: str, key: str, fingerprint: str) -> bytes | None:
    """The answer already given under (scope, key), None if none; Conflict if the key was used
    for a different request."""
    assert uow.conn is not None
    row = uow.conn.execute(_idempotency_lookup(uow.tables["idempotency_keys"]),
                           {"scope": scope, "key": key}).first()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise Conflict(f"idempotency_key {key!r} was already used for a different request")
    return bytes(row.response)


def store_response(uow: UnitOfWork, scope: str, key: str, fingerprint: str, response: bytes) -> None:
    assert uow.conn is not None
    uow.conn.execute(insert(uow.tables["idempotency_keys"]), {
        "scope": scope, "key": key, "request_hash": fingerprint, "response": response,
        "created_at": utcnow()})


def _idempotency_lookup_many(table: Table):
    """Like _idempotency_lookup, for a list of keys (scope checked by the caller)."""
    if ("many", id(table)) not in _lookups:
        _lookups[("many", id(table))] = select(
            table.c.scope, table.c.key, table.c.request_hash, table.c.response,
        ).where(table.c.key.in_(bindparam("keys", expanding=True)))
    return _lookups[("many", id(table))]


def stored_responses(uow: UnitOfWork, keys: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, bytes]]:
    """(request_hash, response) already stored under each of these (scope, key), in one query
    per 500 keys."""
    assert uow.conn is not None
    lookup = _idempotency_lookup_many(uow.tables["idempotency_keys"])
    found: dict[tuple[str, str], tuple[str, bytes]] = {}
    wanted = sorted({key for _, key in keys})
    for start in range(0, len(wanted), 500):
        rows = uow.conn.execute(lookup, {"keys": wanted[start:start + 500]})
        found.update({(r.scope, r.key): (r.request_hash, bytes(r.response)) for r in rows
                      if (r.scope, r.key) in keys})
    return found


def run_idempotent_many(uow: UnitOfWork, requests: Sequence[tuple[str, str, str]],
                        prepare: Callable[[int], tuple[bytes, Any]],
                        write: Callable[[list[Any]], None]) -> list[bytes | Exception]:
    """run_idempotent for many requests in the caller's transaction, with one insert per table
    for all of them instead of statements per request.

    requests: (scope, key, fingerprint) of each. prepare(i) checks request i and returns its
    answer and the rows it would write, without writing; an exception it raises becomes that
    request's result alone. write(rows of every accepted request) inserts them. A key stored
    before answers with its stored response; a key repeated within `requests` answers as its
    first occurrence did (Conflict in both cases if the request differs).

    The first attempt assumes every key is new and looks none up: the keys' unique index
    refuses the insert if one was stored before (a retried request, or a concurrent writer),
    and then the set starts again from one lookup of all its keys.
    """
    assert uow.conn is not None
    for attempt in range(5):
        stored = stored_responses(uow, {(scope, key) for scope, key, _ in requests}) if attempt else {}
        results: list[bytes | Exception] = []
        staged: list[Any] = []
        new_keys: list[dict[str, Any]] = []
        created = utcnow()
        for i, (scope, key, fingerprint) in enumerate(requests):
            try:
                check_idempotency_key(key)
                prior = stored.get((scope, key))
                if prior is not None:
                    if prior[0] != fingerprint:
                        raise Conflict(f"idempotency_key {key!r} was already used for a different request")
                    results.append(prior[1])
                    continue
                answer, rows = prepare(i)
            except Exception as exc:  # noqa: BLE001 - prepare wrote nothing: the error is this request's alone
                results.append(exc)
                continue
            stored[(scope, key)] = (fingerprint, answer)
            staged.append(rows)
            new_keys.append({"scope": scope, "key": key, "request_hash": fingerprint,
                             "response": answer, "created_at": created})
            results.append(answer)
        if not staged:
            return results
        try:
            with uow.conn.begin_nested():
                write(staged)
                insert_many(uow.conn, uow.tables["idempotency_keys"], new_keys)
            return results
        except IntegrityError:
            continue
    raise Conflict("concurrent requests with the same idempotency keys did not settle; retry")


def run_idempotent(uow: UnitOfWork, scope: str, key: str, fingerprint: str,
                   work: Callable[[UnitOfWork], bytes]) -> bytes:
    """Run `work` once per (scope, key); a repeat returns the stored response unchanged.

    The key is stored in the same transaction as the effect, so a crash leaves either both or
    neither. Reusing a key for a different request is a Conflict.
    """
    check_idempotency_key(key)
    with uow:
        previous = stored_response(uow, scope, key, fingerprint)
        if previous is not None:
            return previous
        response = work(uow)
        try:
            store_response(uow, scope, key, fingerprint, response)
            uow.commit()
        except IntegrityError:
            uow.rollback()
        else:
            return response
    with uow:  # a concurrent duplicate won the race: answer with its response
        previous = stored_response(uow, scope, key, fingerprint)
    if previous is None:
        raise Conflict(f"idempotency_key {key!r}: concurrent request did not complete")
    return previous
