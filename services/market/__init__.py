"""Market service (商超保供, docs/market.md): designated supermarkets and supply points, sellable
lists, household orders, community orders, parcels and labels, payments and the settlement,
and the town's purchase on behalf (代买). `python -m services.market <process>`.

domain/       the rules (pure)
adapters/     tables, repositories (SQL only there), labels
handlers/     use cases, one module per seam
entrypoints/  grpc_api.py (MarketService, port 50055), worker.py (intake's requesters)
"""

PROCESSES = ("api", "worker", "relay")  # the processes `python -m services.market` starts
