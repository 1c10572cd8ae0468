"""The catalogue as the API shows it: items found by code or name."""

from __future__ import annotations

from services.common.catalogue import Catalogue


def catalogue_items(catalogue: Catalogue, query: str, essential_only: bool) -> list:
    """Catalogue items matching `query` in code or either name (case-insensitive), by group and code."""
    q = query.strip().casefold()
    found = [i for i in catalogue.items.values()
             if (not essential_only or i.essential)
             and (not q or q in i.code.casefold() or q in i.name_zh or q in i.name_en.casefold())]
    return sorted(found, key=lambda i: (i.group, i.code))
