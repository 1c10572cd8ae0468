"""Monitoring use cases: load, call the domain, save, record events — in one unit of work.

Functions here take an open UnitOfWork and do not commit; the caller commits (the ingest after a
batch group, the gRPC servicer through services.common.servicer.WriteServicer, the worker
through consume), so the alert transition, its history row and its outbox event land in one
transaction with the state change that caused them.

Locking (ADR 0002): everything that reads-modifies-writes a zone's evaluation state takes the
zone's `zone_state` row FOR UPDATE first (zones in sorted order), and alerts are loaded FOR
UPDATE; on SQLite every write transaction holds the file's write lock (BEGIN IMMEDIATE) anyway.

Modules: base (the context, roles, a payload's required field), zones (zone map, registration,
zone state rows), alerts (load, save, raise, clear, acknowledge, export), ingest (a group of
MQTT messages, held readings, unregistered zones, the offline timer), lots (logistics' stock
events, segregation, expiry, spoilage, reserve floors), prices, queries (the API's reads).
"""
