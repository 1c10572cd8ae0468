"""Market use cases: load, call the domain, save, record events, in one unit of work.

Functions take an open UnitOfWork and do not commit: the gRPC servicer (idempotent writes) or the
worker (processed events) commits. SQL lives in services/market/adapters.

Modules: base (the context, who may do what), outlets (outlets, communities from intake,
assignments), lists (sellable lists), orders (household orders), community_orders (aggregation,
confirmation, packing, labels), settlement (payments, delivery, cash book, ledger, settlement,
the day's summary), purchase (代买).
"""
