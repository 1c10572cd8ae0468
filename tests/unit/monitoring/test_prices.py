from datetime import date, timedelta

import pytest

from services.common.errors import InvalidInput
from services.monitoring.domain.prices import (
    PriceBook,
    PriceObservation,
    PricePolicy,
    detect_price_rise,
    parse_price_fen,
    validate_submission,
)

TODAY = date(2026, 11, 28)


def obs(days_ago, fen, product="PORK", market="M1"):
    return PriceObservation(product, market, TODAY - timedelta(days=days_ago), fen)


def test_valid_submission_in_yuan_becomes_fen():
    o = validate_submission({"product": "PORK", "market": "城关农贸市场", "day": "2026-11-28",
                             "price_yuan": "26.80"}, today=TODAY)
    assert o == PriceObservation("PORK", "城关农贸市场", TODAY, 2680)
    assert parse_price_fen(12.3) == 1230 and parse_price_fen(12) == 1200


@pytest.mark.parametrize("raw, field, text", [
    ({"product": "CAVIAR"}, "product", "unknown product 'CAVIAR'"),
    ({"product": "PORK", "market": "a/b"}, "market", "MQTT topic characters"),
    ({"product": "PORK", "market": "M1", "day": "28/11/2026"}, "day", "YYYY-MM-DD"),
    ({"product": "PORK", "market": "M1", "day": "2026-11-29"}, "day", "in the future"),
    ({"product": "PORK", "market": "M1", "day": "2026-11-28"}, "price_yuan", "missing"),
    ({"product": "PORK", "market": "M1", "day": "2026-11-28", "price_yuan": 0}, "price_yuan", "positive"),
    ({"product": "PORK", "market": "M1", "day": "2026-11-28", "price_yuan": -3}, "price_yuan", "positive"),
    ({"product": "PORK", "market": "M1", "day": "2026-11-28", "price_yuan": 26.805}, "price_yuan", "2 decimals"),
    ({"product": "PORK", "market": "M1", "day": "2026-11-28", "price_yuan": "NaN"}, "price_yuan", "finite"),
    ({"product": "PORK", "market": "M1", "day": "2026-11-28", "price_yuan": True}, "price_yuan", "number"),
    ({"product": "PORK", "market": "M1", "day": "2026-11-28", "price_yuan": 2680}, "price_yuan", "implausible"),
])
def test_invalid_submissions_name_the_field(raw, field, text):
    with pytest.raises(InvalidInput) as e:
        validate_submission(raw, today=TODAY)
    assert e.value.field == field and text in e.value.message


def test_rise_beyond_20_percent_over_the_7_day_mean_raises_an_alert():
    # previous days 9.00, 10.00, 11.00, 10.00 → baseline 10.00; day 8 (5.00) is outside the window
    history = [obs(1, 900), obs(2, 1000), obs(3, 1100), obs(7, 1000), obs(8, 500)]
    assert detect_price_rise(obs(0, 1200), history) is None  # exactly +20 %: not beyond
    rise = detect_price_rise(obs(0, 1201), history)
    assert rise is not None and rise.baseline_fen == 1000 and rise.history_days == 4
    assert rise.rise_pct == pytest.approx(20.1)
    assert "猪肉" in rise.text_zh and "20.1 % above the baseline 10.00 yuan" in rise.text_en


def test_no_alert_without_3_days_of_history_or_for_another_market():
    assert detect_price_rise(obs(0, 5000), [obs(1, 1000), obs(2, 1000)]) is None
    other = [obs(i, 1000, market="M2") for i in range(1, 5)]
    assert detect_price_rise(obs(0, 5000), other) is None


def test_configurable_threshold():
    history = [obs(i, 1000) for i in range(1, 4)]
    assert detect_price_rise(obs(0, 1150), history, PricePolicy(rise_pct=10)) is not None
    assert detect_price_rise(obs(0, 1150), history) is None


def test_price_book_keeps_the_latest_submission_of_a_day():
    book = PriceBook()
    for i in range(1, 4):
        assert book.record(obs(i, 1000)) is None
    assert book.record(obs(0, 1500)) is not None
    assert book.record(obs(0, 1100)) is None  # corrected the same day
    book.record(obs(0, 2000, product="EGG"))
    assert [r.product for r in book.check_day(TODAY)] == []  # eggs have no history


@pytest.mark.parametrize("value", ["1e309", "9" * 40, "1000000.01"])
def test_a_price_beyond_a_million_yuan_is_refused_before_any_float_arithmetic(value):
    with pytest.raises(InvalidInput) as caught:
        parse_price_fen(value)
    assert caught.value.field == "price_yuan"
