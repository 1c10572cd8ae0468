"""Why each plan line got what it got: the reasons (rule code + zh/en sentence) per line.

The engine fixes quantities and picks; this picks, from the per-(tier, item) numbers it kept,
which reasons of domain.reasons each line carries (RULES.md §3, §4; engine.py point 6).
"""

from __future__ import annotations

import numpy as np

from . import reasons as rs


def reasons_per_line(n, item, tpos, alloc, next_dep, sub_pkg, abnormal, items, tier_order,
                      policy, floor, floors, asked_ti, open_ti, given_ti, before_ti, after_ti,
                      usable_total, expired_qty, expired_lots, handled, pkg_recipes, dep_list,
                      n_dep, n_item):
    """One shared tuple of reasons per distinct (item, tier, line state)."""
    if n == 0:
        return []
    group = tpos * n_item + item
    key = group
    key = key * 2 + (alloc > 0)
    key = key * (n_dep + 1) + (next_dep + 1)
    key = key * (n_item + 1) + (sub_pkg + 1)
    key = key * 2 + abnormal
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    per_map = {pk: per for pk, per in pkg_recipes}
    group_cache: dict[int, list] = {}
    out = np.empty(len(uniq), dtype=object)
    for u, j in enumerate(first.tolist()):
        i, p = int(item[j]), int(tpos[j])
        t = tier_order[p]
        it = items[i]
        g = p * n_item + i
        if g not in group_cache:
            group_cache[g] = _group_reasons(it, i, p, t, policy, floor, floors, asked_ti,
                                            open_ti, given_ti, before_ti, after_ti,
                                            usable_total, expired_qty, expired_lots, handled)
        head, tail = group_cache[g]
        rr = list(head)
        if alloc[j] > 0:
            rr += [rs.nearest_depot(it), rs.fefo(it)]
            rr += tail
            if next_dep[j] >= 0:
                rr.append(rs.next_depot(it, dep_list[int(next_dep[j])].id))
        if sub_pkg[j] >= 0:
            pk = int(sub_pkg[j])
            rr.append(rs.package_substitute(it, items[pk], int(per_map[pk][i])))
        if abnormal[j]:
            rr.append(rs.ABNORMAL)
        out[u] = tuple(rr)
    return out[inv].tolist()


def _group_reasons(it, i, p, t, policy, floor, floors, asked_ti, open_ti, given_ti,
                   before_ti, after_ti, usable_total, expired_qty, expired_lots, handled):
    """(reasons every line of the item-tier carries, reasons only served lines carry)."""
    if not handled[i]:
        return [rs.non_essential(it)], []
    asked, opened, given = int(asked_ti[p, i]), int(open_ti[p, i]), int(given_ti[p, i])
    before = int(before_ti[p, i])
    taken_above = int(usable_total[i]) - before
    head = [rs.tier_order(it, t, asked, taken_above, opened)]
    short = given < asked
    if short:
        if 0 < given:
            head.append(rs.fair_share(it, t, asked, given))
        blocked = before - opened
        if blocked > 0:
            head.append(rs.reserve_floor(it, floors[it.code], blocked))
        if usable_total[i] == 0:
            head.append(rs.no_stock(it))
        if expired_qty[i] > 0:
            head.append(rs.expired_excluded(it, int(expired_qty[i]), int(expired_lots[i]),
                                            policy.min_days_to_expiry))
    tail = []
    if (t in policy.below_reserve_tiers and floor[i] > 0 and after_ti[p, i] < floor[i]
            and after_ti[p, i] < before):
        tail.append(rs.reserve_draw(it, t, int(floor[i]), int(after_ti[p, i])))
    return head, tail
