"""Benchmark of the supermarket channel's day (services.market.domain + adapters.labels), in memory.

    .venv/bin/python bench/market_orders.py            # 20 000 household orders, 300 communities
    .venv/bin/python bench/market_orders.py --quick    # 2 000 orders, 30 communities

A seeded county: about 40 supermarkets and 300 communities at random positions (about 60 × 60 km),
each supermarket publishing a sellable list of 20-30 necessities for the day. Every community
is routed to its serving supermarket (nearest, a few assigned by HQ); its households place
orders (1-8 lines, household reference = HMAC of the address, expected amount as told), the
community's day is aggregated into one community order, the supermarket answers each line
(about 8 % partial, 4 % out of stock), the orders are allocated first come first served,
packed, and labelled: one HTML page of labels (QR code per parcel) and one packing list page
per community order, as GetLabels serves them. Baseline, same run: the same raw orders summed
per community and item in a plain loop (no rules). Target: < 5 s for the whole day.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections import defaultdict
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.intake_grpc import cpu_model  # noqa: E402
from services.common.catalogue import load_catalogue  # noqa: E402
from services.market.adapters.labels import render_labels_html, render_packing_list_html  # noqa: E402
from services.market.domain.aggregation import aggregate, allocate, apply_confirmation  # noqa: E402
from services.market.domain.lists import SellableList, validate_list_lines  # noqa: E402
from services.market.domain.orders import household_reference, place_order  # noqa: E402
from services.market.domain.outlets import Community, DropPoint, Outlet, serving_outlet  # noqa: E402
from services.market.domain.parcels import pack  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 3, 2)
NOW = datetime.combine(DAY - timedelta(days=1), dtime(10, 0), TZ)
CENTRE = (30.0, 120.0)
KEY = b"bench-county-key-0123456789"


def county(n_communities: int, n_outlets: int, seed: int = 2026):
    rng = random.Random(seed)
    cat = load_catalogue()
    essentials = sorted(c for c, i in cat.items.items() if i.essential and not i.is_package)

    def pos():
        return (CENTRE[0] + rng.uniform(-0.27, 0.27),
                CENTRE[1] + rng.uniform(-0.31, 0.31) / math.cos(math.radians(CENTRE[0])))

    outlets = [Outlet(f"O{i:03d}", f"定点超市 {i}", "supermarket", f"T{i % 12}", *pos()) for i in range(n_outlets)]
    lists = {}
    for o in outlets:
        items = rng.sample(essentials, min(len(essentials), rng.randint(20, 30)))
        raw = [{"item_code": c, "price_fen": rng.randint(150, 6000)} for c in items]
        lists[o.outlet_id] = SellableList(o.outlet_id, DAY, 1, validate_list_lines(raw, cat))
    communities = [Community(f"C{i:04d}", f"社区 {i}", f"T{i % 12}", *pos(),
                             tuple(DropPoint(f"C{i:04d}-DP{j}", f"存放点 {j}") for j in range(rng.randint(1, 3))),
                             rng.randint(40, 120)) for i in range(n_communities)]
    assigned = {c.community_id: rng.choice(outlets).outlet_id for c in rng.sample(communities, n_communities // 20)}
    return rng, cat, outlets, lists, communities, assigned


def raw_orders(rng, communities, routed, lists, n_orders):
    """(community, raw lines, expected amount, address) as the grid workers enter them."""
    weights = [c.households for c in communities]
    out = []
    for k, c in enumerate(rng.choices(communities, weights=weights, k=n_orders)):
        sl = lists[routed[c.community_id]]
        lines = rng.sample(sl.lines, rng.randint(1, min(8, len(sl.lines))))
        raw = [{"item_code": ln.item_code, "quantity": rng.randint(1, 5)} for ln in lines]
        expected = sum(r["quantity"] * ln.price_fen for r, ln in zip(raw, lines, strict=True))
        out.append((f"o{k:06d}", c, raw, expected, f"{rng.randint(1, 40)}栋 {rng.randint(1, 6)}单元 {rng.randint(101, 1802)}"))
    return out


def baseline(raws) -> tuple[float, float, dict]:
    """The same orders summed per community and item in a plain loop (no rules)."""
    clock = Clocks()
    clock.start()
    sums: dict = defaultdict(lambda: defaultdict(int))
    for _oid, c, raw, _expected, _address in raws:
        per = sums[c.community_id]
        for r in raw:
            per[r["item_code"]] += r["quantity"]
    return (*clock.stop(), sums)


class Clocks:
    """Wall and CPU time of a stage: on a shared machine the CPU time is the steadier figure."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def run(n_orders: int, n_communities: int, n_outlets: int) -> None:
    console = Console(width=120)
    console.print(f"machine: {os.cpu_count()} cores, {cpu_model()}; python {sys.version.split()[0]}")
    rng, cat, outlets, lists, communities, assigned = county(n_communities, n_outlets)
    stages: list[tuple[str, float, float, int]] = []
    clock = Clocks()

    clock.start()
    routed = {c.community_id: serving_outlet(c, outlets, "supermarket", assigned).outlet_id for c in communities}
    stages.append(("route communities (nearest / HQ)", *clock.stop(), len(communities)))
    by_outlet = {o.outlet_id: o for o in outlets}

    raws = raw_orders(rng, communities, routed, lists, n_orders)
    base_s, base_cpu, base_sums = baseline(raws)

    clock.start()
    orders = []
    for k, (oid, c, raw, expected, address) in enumerate(raws):
        o = by_outlet[routed[c.community_id]]
        orders.append(place_order(order_id=oid, community=c, outlet=o, day=DAY,
                                  household_ref=household_reference(KEY, c.community_id, address),
                                  grid_worker=f"gw-{c.community_id}", payment_mode=("collected", "online",
                                                                                    "on_account")[k % 3],
                                  raw_lines=raw, expected_amount_fen=expected, sellable_list=lists[o.outlet_id],
                                  catalogue=cat, now=NOW + timedelta(seconds=k), tz=TZ))
    stages.append(("place orders (HMAC ref, rules, amount)", *clock.stop(), len(orders)))

    clock.start()
    per_community: dict[str, list] = defaultdict(list)
    for o in orders:
        per_community[o.community_id].append(o)
    cos = {cid: aggregate(f"CO-{cid}", os_, next(c for c in communities if c.community_id == cid)
                          .drop_points[0].drop_point_id) for cid, os_ in per_community.items()}
    stages.append(("aggregate per community", *clock.stop(), len(cos)))

    answers = {}
    for cid, co in cos.items():
        a = {}
        for ln in co.lines:
            r = rng.random()
            if r < 0.04:
                a[ln.item_code] = ("out_of_stock", None)
            elif r < 0.12 and ln.quantity > 1:
                a[ln.item_code] = ("partial", rng.randint(1, ln.quantity - 1))
            else:
                a[ln.item_code] = ("full", None)
        answers[cid] = a
    clock.start()
    confirmed, changed_n = {}, 0
    for cid, co in cos.items():
        done, changed = apply_confirmation(co, per_community[cid], answers[cid])
        confirmed[cid] = (done, allocate(done, per_community[cid]))
        changed_n += len(changed)
    stages.append(("confirm + allocate (first come first served)", *clock.stop(), len(confirmed)))

    clock.start()
    parcels = {cid: pack(done, os_) for cid, (done, os_) in confirmed.items()}
    n_parcels = sum(len(p) for p in parcels.values())
    stages.append(("pack parcels", *clock.stop(), n_parcels))

    addresses = {oid: address for oid, _c, _raw, _e, address in raws}
    community_of = {c.community_id: c for c in communities}
    clock.start()
    html_bytes = 0
    for cid, ps in parcels.items():
        c = community_of[cid]
        html_bytes += len(render_labels_html(ps, outlet=by_outlet[routed[cid]], community=c, drop_points=c.drop_points,
                                             addresses=addresses, lang="zh", catalogue=cat))
        html_bytes += len(render_packing_list_html(ps, outlet=by_outlet[routed[cid]], community=c,
                                                   drop_points=c.drop_points, lang="zh", catalogue=cat))
    stages.append(("labels + packing lists (HTML, QR per parcel)", *clock.stop(), n_parcels))

    # the rules agree with the plain sum: what was aggregated is what was ordered
    agree = all({ln.item_code: ln.quantity for ln in cos[cid].lines} == dict(base_sums[cid]) for cid in cos)
    total, total_cpu = sum(st[1] for st in stages), sum(st[2] for st in stages)
    domain, domain_cpu = sum(st[1] for st in stages[:-1]), sum(st[2] for st in stages[:-1])
    table = Table(title=f"market day: {len(orders):,} household orders, {len(communities)} communities, "
                        f"{len(outlets)} supermarkets")
    for col in ("stage", "wall s", "CPU s", "items", "CPU µs / item"):
        table.add_column(col, justify="left" if col == "stage" else "right")
    for name, wall, cpu, n in stages:
        table.add_row(name, f"{wall:.3f}", f"{cpu:.3f}", f"{n:,}", f"{cpu / max(n, 1) * 1e6:,.0f}")
    table.add_row("domain, route to pack", f"{domain:.2f}", f"{domain_cpu:.2f}", f"{len(orders):,}",
                  f"{domain_cpu / len(orders) * 1e6:,.0f}")
    table.add_row("[bold]total[/]", f"[bold]{total:.2f}[/]", f"[bold]{total_cpu:.2f}[/]", f"{len(orders):,}",
                  f"{total_cpu / len(orders) * 1e6:,.0f}")
    table.add_row("baseline: same orders summed in a plain loop", f"{base_s:.3f}", f"{base_cpu:.3f}",
                  f"{len(orders):,}", f"{base_cpu / len(orders) * 1e6:,.1f}")
    console.print(table)
    console.print(f"ratio to baseline (wall): total {total / base_s:,.0f}x, domain {domain / base_s:,.0f}x; "
                  f"parcels {n_parcels:,}, orders changed by confirmation {changed_n:,}; HTML "
                  f"{html_bytes / 1e6:.1f} MB; aggregation = plain sum: {'yes' if agree else 'NO'}; target < 5 s: "
                  f"{'met' if total < 5 else 'NOT met'} (domain alone: {'met' if domain < 5 else 'NOT met'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 000 orders, 30 communities")
    args = ap.parse_args()
    if args.quick:
        run(2_000, 30, 8)
    else:
        run(20_000, 300, 40)


if __name__ == "__main__":
    main()
