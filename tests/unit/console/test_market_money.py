"""The supermarket channel's page helpers: yuan typed by a person read into fen without floats,
fen shown as yuan, a parcel's outcome from its household order, a market refusal in the page's
language."""

from __future__ import annotations

from services.console.domain.market import parcel_state, parse_yuan, total_fen, whole, yuan
from services.console.entrypoints.market_forms import say


def test_yuan_typed_become_whole_fen():
    assert parse_yuan("12.5") == 1250
    assert parse_yuan("12") == 1200
    assert parse_yuan(" ¥0.05 ") == 5
    assert parse_yuan("1,234.56元") == 123456
    assert parse_yuan("0.1") == 10 and parse_yuan("19.99") == 1999  # 19.99 * 100 is 1998.99… as a float


def test_what_is_not_money_above_zero_is_refused():
    for text in ("", "abc", "0", "0.00", "-1", "1.234", "1e3", "12.5.1"):
        assert parse_yuan(text) is None, text


def test_fen_shown_as_yuan():
    assert [yuan(f) for f in (0, 5, 1250, 123456, -599)] == ["0.00", "0.05", "12.50", "1234.56", "-5.99"]
    assert total_fen([(2, 6850), (1, 5990)]) == 19690


def test_counts_typed():
    assert whole("3") == 3 and whole("0") == 0
    assert whole("100") is None and whole("x") is None and whole("") is None
    assert whole("1", lo=1, hi=1) == 1


def test_a_parcels_outcome_comes_from_its_household_order():
    assert parcel_state("HO-1", "packed", []).parcel_id == "P-HO-1"
    assert parcel_state("HO-1", "packed", []).outcome == "packed"
    assert parcel_state("HO-1", "delivered", [(2, 2), (1, 1)]).outcome == "received"
    assert parcel_state("HO-1", "delivered", [(2, 1), (0, 0)]).outcome == "short"
    assert parcel_state("HO-1", "refused", [(2, -1)]).outcome == "refused"
    assert parcel_state("HO-1", "sent", []).outcome == ""


def test_a_market_refusal_in_the_pages_language():
    bilingual = "[market_after_cutoff] 已过下单截止时间 / orders for this day closed at 20:00"
    assert say(bilingual, "zh_CN") == "已过下单截止时间"
    assert say(bilingual, "en") == "orders for this day closed at 20:00"
    english_first = "lines[1].price_fen: at most 100000 in magnitude / 数值超出范围"
    assert say(english_first, "zh_CN") == "数值超出范围" and say(english_first, "en") == "at most 100000 in magnitude"
    assert say("expected_amount_fen: the lines come to 1234 fen", "zh_CN") == "the lines come to 1234 fen"
