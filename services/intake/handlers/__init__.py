"""Intake use cases: load, call the domain, save, record events — in one unit of work.

Functions here take an open UnitOfWork and do not commit: the caller (the gRPC servicer through
run_idempotent, or the worker through consume) commits, so the idempotency key or the
processed-event record lands in the same transaction as the effect. Their SQL is in
services/intake/adapters (repositories, county_policy_store).

Modules: base (the context, who reads what, the requester lookup), requesters, policy (the
county's cut-off from allocation), demands (submission, lists, delivery results, rolling the
unplanned), special_needs, requisitions, donations, imports (spreadsheets), catalogue.
"""
