import pytest

from services.common.errors import InvalidInput, RuleRefused
from services.market.domain.lists import SellableList, validate_list_lines
from services.market.domain.policy import MarketPolicy
from tests.unit.market.market_support import CATALOGUE, DAY, ESSENTIAL, NON_ESSENTIAL


def test_lines_take_the_catalogue_unit():
    lines = validate_list_lines([{"item_code": ESSENTIAL[0], "price_fen": 350, "available": 10}], CATALOGUE)
    assert lines[0].unit == CATALOGUE.items[ESSENTIAL[0]].unit
    assert (lines[0].price_fen, lines[0].available) == (350, 10)


def test_non_essential_is_refused():
    with pytest.raises(RuleRefused) as e:
        validate_list_lines([{"item_code": ESSENTIAL[0], "price_fen": 1},
                             {"item_code": NON_ESSENTIAL[0], "price_fen": 1}], CATALOGUE)
    assert e.value.rule == "market_non_essential"
    assert "必需品" in e.value.message and "not a necessity" in e.value.message


def test_unknown_item_names_the_line():
    with pytest.raises(InvalidInput) as e:
        validate_list_lines([{"item_code": ESSENTIAL[0], "price_fen": 1}, {"item_code": "NOPE", "price_fen": 1}],
                            CATALOGUE)
    assert e.value.field == "lines[1].item_code"


@pytest.mark.parametrize("price", [0, -1, 100_001, 1.5, "100", True])
def test_price_out_of_range_names_the_line(price):
    with pytest.raises(InvalidInput) as e:
        validate_list_lines([{"item_code": ESSENTIAL[0], "price_fen": price}], CATALOGUE)
    assert e.value.field == "lines[0].price_fen"


def test_price_limit_is_the_policy():
    validate_list_lines([{"item_code": ESSENTIAL[0], "price_fen": 100_000}], CATALOGUE)
    with pytest.raises(InvalidInput):
        validate_list_lines([{"item_code": ESSENTIAL[0], "price_fen": 100_000}], CATALOGUE,
                            MarketPolicy(max_price_fen=99_999))


def test_repeated_item_is_refused():
    with pytest.raises(InvalidInput) as e:
        validate_list_lines([{"item_code": ESSENTIAL[0], "price_fen": 1}, {"item_code": ESSENTIAL[0], "price_fen": 2}],
                            CATALOGUE)
    assert e.value.field == "lines[1].item_code"


def test_empty_list_is_refused():
    with pytest.raises(InvalidInput):
        validate_list_lines([], CATALOGUE)


def test_price_of():
    sl = SellableList("O1", DAY, 2, validate_list_lines([{"item_code": ESSENTIAL[0], "price_fen": 420}], CATALOGUE))
    assert sl.price_of(ESSENTIAL[0]) == 420
    with pytest.raises(RuleRefused) as e:
        sl.price_of(ESSENTIAL[1])
    assert e.value.rule == "market_not_on_list"
