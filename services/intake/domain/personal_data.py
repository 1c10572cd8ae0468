"""Personal data: names and phone numbers as stored, and as shown outside intake.

The one place every masked name, phone or contact comes from (GB/T 35273 practice: show no
more than a person needs to recognise their own record).
"""

from __future__ import annotations

import re
import unicodedata

from services.common.errors import InvalidInput

MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}")


def normalize_name(name: str) -> str:
    """NFKC, trimmed, inner whitespace collapsed: 'Zhang  San ' and 'Zhang San' are one name."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", name)).strip()


def normalize_phone(phone: str, field: str = "phone") -> str:
    """Digits only; a leading +86 / 0086 country code is dropped. 7 to 15 digits."""
    if not isinstance(phone, str):
        raise InvalidInput(field, "must be text")
    s = unicodedata.normalize("NFKC", phone).strip()
    if not re.fullmatch(r"\+?[\d\s()-]+", s):
        raise InvalidInput(field, "must be a phone number (digits, spaces, '-', '+')")
    digits = re.sub(r"\D", "", s)
    if digits.startswith("0086"):
        digits = digits[4:]
    elif s.startswith("+86") or (digits.startswith("86") and len(digits) == 13):
        digits = digits[2:]
    if not 7 <= len(digits) <= 15:
        raise InvalidInput(field, f"must have 7 to 15 digits, got {len(digits)}")
    return digits


def mask_name(name: str) -> str:
    """First character and one '*' per further character: 张三丰 → 张**; 李 → 李*."""
    n = normalize_name(name)
    if not n:
        return ""
    return n[0] + "*" * max(1, len(n) - 1)


def phone_digits(phone: str) -> str:
    """The digits of a number as typed, without a +86 / 0086 country code before a mobile."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone))
    for code in ("0086", "86"):
        if digits.startswith(code) and MAINLAND_MOBILE.fullmatch(digits[len(code):]):
            return digits[len(code):]
    return digits


def mask_phone(phone: str) -> str:
    """An 11-digit mainland mobile keeps its first 3 and last 4 digits (138****5678); any
    other number at most half of its digits, split between its start and its end
    (8 digits: 88****66; 0571-88889999: 057******999). Separators are left out."""
    digits = phone_digits(phone)
    if MAINLAND_MOBILE.fullmatch(digits):
        return digits[:3] + "****" + digits[-4:]
    shown = len(digits) // 2
    head, tail = shown // 2, shown - shown // 2
    return digits[:head] + "*" * (len(digits) - shown) + (digits[-tail:] if tail else "")


def mask_contact(contact: str) -> str:
    """An e-mail keeps its first letter and domain (z***@example.org); a phone number (7 or more
    digits) is masked as mask_phone does; anything else as a name (first character)."""
    c = contact.strip()
    if "@" in c:
        local, _, domain = c.partition("@")
        return f"{local[:1]}***@{domain}"
    if len(re.sub(r"\D", "", c)) >= 7:
        return mask_phone(c)
    return mask_name(c)
