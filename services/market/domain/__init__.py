"""Market domain (商超保供, docs/market.md): pure rules, no I/O; times come in as aware datetimes."""
