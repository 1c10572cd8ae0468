"""Allocation use cases: load, call the domain, save, record events — in one unit of work.

Functions that change state take an open UnitOfWork and do not commit: the caller (the gRPC
servicer through run_idempotent, the worker through consume, the cut-off runner) commits, so
the idempotency key or the processed-event record lands in the same transaction as the effect.

Making a plan has two steps: plans.draft_plan() reads the day's demands, asks logistics for
stock (network) and runs the engine (CPU) outside any transaction; plans.save_plan() then
applies the plan state rules and stores the plan, its lines and the plan_proposed event in one
short one.

Modules: base (the context, who may call what), intake_events (requesters and demands from
intake's events), policy (the county policy), plans (making, deciding and reading plans),
cutoff (the cut-off's plan), explain (one line's numbers), forecast. SQL lives in adapters/
(demand_store, policy_store, plan_store).
"""
