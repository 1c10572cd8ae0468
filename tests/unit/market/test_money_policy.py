import pytest

from services.common.errors import InvalidInput
from services.market.domain.money import format_yuan, parse_yuan
from services.market.domain.policy import DEFAULT_POLICY


def test_format_yuan():
    assert format_yuan(1250) == "12.50"
    assert format_yuan(5) == "0.05"
    assert format_yuan(0) == "0.00"
    assert format_yuan(-105) == "-1.05"


@pytest.mark.parametrize("text,fen", [("12.50", 1250), ("12.5", 1250), ("12", 1200), ("¥0.05", 5), (" 3.07 ", 307)])
def test_parse_yuan(text, fen):
    assert parse_yuan(text, "price") == fen


@pytest.mark.parametrize("text", ["12.505", "-1", "abc", "", "1e3", "1,5"])
def test_parse_yuan_refuses(text):
    with pytest.raises(InvalidInput) as e:
        parse_yuan(text, "lines[0].price")
    assert e.value.field == "lines[0].price"


def test_policy_defaults():
    p = DEFAULT_POLICY
    assert (p.order_cutoff.hour, p.max_lines, p.max_quantity_per_line, p.max_price_fen) == (20, 50, 99, 100_000)
    assert (p.purchase_list_cutoff.hour, p.purchase_interval_days) == (18, 3)
