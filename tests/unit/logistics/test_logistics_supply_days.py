"""Days of supply against the catalogue's reserve floors (RULES.md §4)."""

from datetime import timedelta

import pytest

from services.logistics.domain.ledger import Ledger
from services.logistics.domain.model import DocRef
from services.logistics.domain.picking import quarantine_lot
from services.logistics.domain.policy import SupplyDaysPolicy
from services.logistics.domain.supply_days import days_of_supply
from tests.unit.logistics.logistics_support import CAT, TODAY, at, receive

POP = 10_000


def groups(led, **kw):
    return {g.group: g for g in days_of_supply(led.balances.values(), CAT, population=POP,
                                               day=TODAY, **kw)}


def test_grain_below_its_15_day_floor():
    led = Ledger()
    receive(led, "RICE-10KG", 6000)
    g = groups(led)["grain_oil"]
    # daily kg: rice 400×10 + flour 300×5 + noodles 500×1 + oil 60×4.6 + salt 200×0.5 = 6376
    assert g.daily == pytest.approx(6376)
    assert g.days == pytest.approx(60_000 / 6376)
    assert g.reserve_days == 15 and g.below_floor
    rice = next(i for i in g.items if i.item_code == "RICE-10KG")
    assert rice.days == pytest.approx(15.0)  # 6000 bags ÷ 400 bags a day


def test_pork_counts_urban_population_and_usable_lots_only():
    led = Ledger()
    receive(led, "PORK-KG", 1500, zone="Z-CHL", expiry=TODAY + timedelta(days=3))
    receive(led, "PORK-FROZEN-KG", 1000, zone="Z-CHL", expiry=TODAY + timedelta(days=90),
            zone_accepts={"chilled": frozenset({"frozen"})})
    receive(led, "PORK-KG", 5000, zone="Z-CHL", expiry=TODAY - timedelta(days=1),
            when=at(8, day=TODAY - timedelta(days=3)))  # expired by today
    bad = receive(led, "PORK-KG", 7000, zone="Z-CHL", expiry=TODAY + timedelta(days=4))
    led.post_all(quarantine_lot(led.balance(bad), doc=DocRef("alert", "A"), actor="m", at=at(9),
                                reason="spoilage").postings)
    pol = SupplyDaysPolicy(population_by_group={"pork": 5000})
    g = groups(led, policy=pol)["pork"]
    assert g.usable == 2500 and g.daily == pytest.approx(700)
    assert g.days == pytest.approx(2500 / 700) and not g.below_floor
    assert groups(led)["pork"].below_floor  # the whole county: 2500 ÷ 1400 < 3


def test_empty_group_with_consumption_is_zero_days_and_below():
    g = groups(Ledger())["medicine"]
    assert g.days == 0 and g.below_floor and g.reserve_days == 30


def test_forecast_and_units_measure():
    led = Ledger()
    receive(led, "MASK-N95", 3000)
    pol = SupplyDaysPolicy(measure="units")
    ppe = groups(led, policy=pol, daily_consumption={"MASK-N95": 100.0, "MASK-SURGICAL-50": 0.0,
                                                     "GLOVE-NITRILE-100": 0.0})["ppe"]
    assert ppe.days == pytest.approx(30.0) and not ppe.below_floor


def test_a_standard_package_counts_as_its_components():
    led = Ledger()
    receive(led, "VEG-PACK-STD", 100, zone="Z-CHL")
    veg = groups(led)["vegetables"]
    usable = {i.item_code: i.usable for i in veg.items}
    assert usable["POTATO-KG"] == 200 and usable["CABBAGE-KG"] == 200 and usable["CARROT-KG"] == 100
