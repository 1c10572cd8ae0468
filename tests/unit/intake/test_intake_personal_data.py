"""Masking of names, phone numbers and contacts (issue 14, finding 10): an 11-digit mainland
mobile shows 3 + 4 digits, any other number at most half of its digits."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.domain import mask_contact, mask_name, mask_phone

mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
separators = st.sampled_from(["", " ", "-", "(", ")", " - "])


@given(st.lists(st.tuples(st.text(alphabet="0123456789", min_size=1, max_size=4), separators),
                max_size=8))
def test_no_number_but_a_mobile_shows_more_than_half_its_digits(parts):
    typed = "".join(d + sep for d, sep in parts)
    digits = "".join(d for d, _ in parts)
    masked = mask_phone(typed)
    if re.fullmatch(r"(0086|86)?1[3-9]\d{9}", digits):  # a mobile, maybe with its country code
        return
    shown = re.fullmatch(r"(\d*)(\**)(\d*)", masked)
    assert shown, masked
    assert len(shown[1]) + len(shown[3]) <= len(digits) // 2
    assert len(masked) == len(digits)
    assert digits.startswith(shown[1]) and digits.endswith(shown[3])


@given(mobiles, st.sampled_from(["", "+86 ", "0086", "86"]))
def test_a_mainland_mobile_shows_its_first_3_and_last_4_digits(mobile, country):
    assert mask_phone(country + mobile) == mobile[:3] + "****" + mobile[-4:]


@pytest.mark.parametrize("phone,masked", [
    ("13812345678", "138****5678"), ("+86 138-1234-5678", "138****5678"),
    ("88886666", "88****66"), ("0571-88889999", "057******999"), ("1234567", "1****67"),
    ("123456", "1***56"), ("12", "*2"), ("1", "*"), ("", ""),
    ("02112345678", "02******678"),  # 11 digits, not a mobile: at most half
])
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize("name,masked", [("张三丰", "张**"), ("李四", "李*"), ("李", "李*"),
                                         ("  欧阳  娜娜 ", "欧****"), ("", "")])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("contact,masked", [("wxm@example.org", "w***@example.org"),
                                            ("微信: 小明", "微*****"),
                                            ("0571-8888 6666", "057******666")])
def test_mask_contact(contact, masked):
    assert mask_contact(contact) == masked
