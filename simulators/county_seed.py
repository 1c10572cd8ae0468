"""A county set up and ready for people to work in it through the console: the demo scenario's
depots, zones, vehicles, opening stock, villages and units (the same acts as `make demo`, through
the same public gRPC APIs), the morning's village demands except for the villages left to people,
and one console account per role (the demo users).

    python -m simulators.county_seed [--scenario …] [--leave V-001,…]   (services must be up)
"""

from __future__ import annotations

import argparse
import os
import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml
from rich.console import Console
from supply.v1 import common_pb2 as c
from supply.v1 import intake_pb2 as ipb
from supply.v1 import intake_pb2_grpc as irpc
from supply.v1 import logistics_pb2_grpc as lrpc

from services.common.clock import parse_clock
from services.common.config import ROOT, load_settings
from services.common.grpc_client import open_channel
from simulators import county_day as demo

SCENARIO = ROOT / "simulators" / "scenarios" / "county_day.yaml"
DEMO_PASSWORD = "county-demo-2026"  # dev only: the console refuses nothing, so never in production


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    scope: str
    display_name: str


def demo_users(scenario: dict) -> list[DemoUser]:
    first, second = demo.villages(scenario)[:2]
    hospital = scenario["units"][0]
    return [
        DemoUser("admin", "admin", "", "系统管理员"),
        DemoUser("hq", "hq", "", "指挥部值班员"),
        DemoUser("village1", "village", first["id"], f"{first['name']}专班"),
        DemoUser("grid1", "grid_worker", first["id"], f"{first['name']}网格员"),
        DemoUser("village2", "village", second["id"], f"{second['name']}专班"),
        DemoUser("keeper", "depot_keeper", "", "仓库管理员"),
        DemoUser("inspector", "inspector", "", "捐赠检验员"),
        DemoUser("unit1", "unit", hospital["id"], f"{hospital['name']}物资科"),
        DemoUser("head1", "unit_head", hospital["id"], f"{hospital['name']}院长"),
        DemoUser("auditor", "auditor", "", "纪委监督员"),
        *(DemoUser("shop1", "supermarket", o["id"], f"{o['name']}店长")
          for o in scenario.get("market", {}).get("outlets", [])[:1]),
    ]


def add_demo_users(store, scenario: dict) -> list[DemoUser]:
    from services.common.errors import Conflict

    users = demo_users(scenario)
    for u in users:
        try:
            store.add_user(u.username, u.role, u.scope, DEMO_PASSWORD, u.display_name)
        except Conflict:
            pass
    return users


def seed_county(targets: dict[str, str], token: str, scenario: dict, *, leave: tuple[str, ...] = (),
                clock_spec: str = "real", console: Console | None = None) -> demo.Day:
    """Depots, stock, villages, units and the morning's demands of every village not in `leave`.
    `token` must be an admin token the services know (county_day.TOKEN in the demo)."""
    console = console or Console(quiet=True)
    clock = parse_clock(clock_spec)
    d = demo.Day(scenario, console, Path(os.environ.get("SUPPLY_VAR_DIR", ROOT / "var")), clock, {})
    md = [("authorization", f"Bearer {token}")]
    tls = load_settings("tools").grpc_tls
    with open_channel(targets["intake"], tls) as ich, open_channel(targets["logistics"], tls) as lch:
        intake, logistics = irpc.IntakeServiceStub(ich), lrpc.LogisticsServiceStub(lch)
        demo.act_depots(d, logistics)
        demo.act_register(d, intake)
        rng = random.Random(scenario["seed"] + 1)
        basket = scenario["morning"]["household_basket_per_100"]
        day = clock.now().astimezone(demo.TZ).date().isoformat()
        batch = [ipb.SubmitDemandRequest(
            idempotency_key=f"seed-{v['id']}-{day}", requester_id=v["id"], lines=[
                c.ItemLine(item_code=item, quantity=max(1, round(per100 * v["population"] / 100 * rng.uniform(0.8, 1.2))))
                for item, per100 in basket.items()])
            for v in d.facts["villages"] if v["id"] not in leave]
        if batch:
            intake.SubmitDemandBatch(ipb.SubmitDemandBatchRequest(idempotency_key=f"seed-batch-{day}", demands=batch),
                                     metadata=md, timeout=60)
    failed = [ch for ch in d.checks if not ch.ok]
    if failed:
        raise RuntimeError("seeding the county failed: " + "; ".join(f"{ch.what} {ch.detail}" for ch in failed))
    return d


def main(argv: list[str] | None = None) -> int:
    from services.common.config import SERVICES, load_settings
    from services.console.entrypoints.accounts_cli import account_store

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(SCENARIO))
    ap.add_argument("--leave", default="", help="village ids whose demands are left to people")
    ap.add_argument("--token", default=os.environ.get("SUPPLY_TOKEN", demo.TOKEN))
    args = ap.parse_args(argv)
    scenario = yaml.safe_load(Path(args.scenario).read_text(encoding="utf-8"))
    settings = load_settings("tools")
    out = Console()
    seed_county({s: settings.grpc_target(s) for s in SERVICES}, args.token, scenario,
                leave=tuple(filter(None, args.leave.split(","))), clock_spec=settings.clock_spec, console=out)
    users = add_demo_users(account_store(), scenario)
    out.print(f"county seeded at {datetime.now():%H:%M}; demo users (password {DEMO_PASSWORD}):")
    for u in users:
        out.print(f"  {u.username:10} {u.role:13} {u.scope}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
