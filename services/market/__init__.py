"""Market service (商超保供, docs/market.md)."""
