"""Logistics use cases: load, call the domain, save, record events — in one unit of work.

Functions here take an open UnitOfWork and do not commit: the caller (the gRPC servicer through
run_idempotent, or the worker through consume) commits, so the idempotency key or the
processed-event record lands in the same transaction as the effect. Every ledger write goes
through `ledger.open_ledger` (locks the ledger head first) and `ledger.save_ledger` (lines,
balances, head, stock_changed events).

Routing a plan (PyVRP, seconds of CPU) is the one exception: it runs outside any transaction
(`dispatch.route_plan`), between a short read and a short write, so the ledger lock is never
held while the solver works.

Modules: base (the context, roles, parsers), ledger (the ledger unit of work, reserve floors),
sites (depots, zones, vehicles, drop points), receipts, stock (issues, quarantine, release,
write-off), dispatch (approved plans, routing), delivery (proof of delivery), queries.
"""
