"""Console account rules (services/console/domain/accounts.py): user names, roles and scopes,
passwords, free text, and the lock-out after repeated wrong passwords with its expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.common.errors import InvalidInput
from services.console.domain.accounts import (
    HOME,
    MAX_PASSWORD,
    MIN_PASSWORD,
    ROLE_NAMES,
    ROLES,
    SCOPED,
    LockoutPolicy,
    User,
    check_new_user,
    check_password,
    clean_text,
)

T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
GOOD_PASSWORD = "correct-horse-9"


def refused_field(**kwargs) -> str:
    args = {"username": "zhang.san", "role": "hq", "scope": "", "password": GOOD_PASSWORD,
            "display_name": "张三", **kwargs}
    with pytest.raises(InvalidInput) as exc:
        check_new_user(**args)
    return exc.value.field


def test_every_role_has_a_home_page_and_names_in_both_languages():
    assert set(ROLES) == set(HOME) == set(ROLE_NAMES)
    assert set(SCOPED) <= set(ROLES)
    assert all(zh and en for zh, en in ROLE_NAMES.values())
    assert User("wang", "village", "V1", "", "h").home == "/village"


@pytest.mark.parametrize("username", ["zhang.san", "wang-v1", "li_3", "a1", "x" * 40, "0day"])
def test_good_user_names(username):
    check_new_user(username, "hq", "", GOOD_PASSWORD)


@pytest.mark.parametrize("username", ["", "a", "Zhang", "-abc", ".abc", "_abc", "x" * 41, "zhang san",
                                      "张三", "zhang\nsan", "a/b", "a@b"])
def test_bad_user_names_are_refused_naming_the_field(username):
    assert refused_field(username=username) == "username"


def test_an_unknown_role_is_refused():
    assert refused_field(role="superuser") == "role"
    assert refused_field(role="") == "role"


@pytest.mark.parametrize("role", SCOPED)
def test_village_grid_and_unit_roles_need_the_requester_they_act_for(role):
    assert refused_field(role=role, scope="") == "scope"
    check_new_user("wang", role, "V-001", GOOD_PASSWORD)


@pytest.mark.parametrize("scope", ["a b", "-V1", "V1/2", "x" * 65, "村1", "V1\x00"])
def test_a_badly_formed_scope_is_refused(scope):
    assert refused_field(role="village", scope=scope) == "scope"


def test_a_county_wide_role_may_still_carry_a_well_formed_scope():
    check_new_user("zhang", "depot_keeper", "D1", GOOD_PASSWORD)
    check_new_user("zhang", "hq", "township:QX", GOOD_PASSWORD)


def test_password_length_limits():
    check_password("p" * MIN_PASSWORD)
    check_password("p" * MAX_PASSWORD)
    for bad in ("", "p" * (MIN_PASSWORD - 1), "p" * (MAX_PASSWORD + 1)):
        with pytest.raises(InvalidInput) as exc:
            check_password(bad)
        assert exc.value.field == "password"
    assert refused_field(password="short") == "password"


@pytest.mark.parametrize("ch", ["\x00", "\n", "\t", "\x1b", "\x7f"])
def test_control_characters_are_refused_in_passwords_and_names(ch):
    with pytest.raises(InvalidInput, match="control characters"):
        check_password(f"long-enough{ch}password")
    assert refused_field(display_name=f"张{ch}三") == "display_name"


def test_clean_text_normalises_strips_and_limits():
    assert clean_text("note", "  Cafe\u0301 ", max_len=10) == "Café"  # NFC: one character, not two
    assert len(clean_text("note", "Cafe\u0301", max_len=4)) == 4
    assert clean_text("note", "   ", max_len=5, required=False) == ""
    with pytest.raises(InvalidInput, match="required") as exc:
        clean_text("note", "   ", max_len=5)
    assert exc.value.field == "note"
    with pytest.raises(InvalidInput, match="at most 5"):
        clean_text("note", "123456", max_len=5)
    with pytest.raises(InvalidInput, match="control characters"):
        clean_text("note", "a\u0007b", max_len=5)
    assert refused_field(display_name="名" * 61) == "display_name"


def test_the_lock_comes_with_the_nth_wrong_password_and_resets_the_count():
    policy = LockoutPolicy(max_failures=3, lock_for=timedelta(minutes=15))
    user = User("zhang", "hq", "", "", "hash")
    user.record_failure(T0, policy)
    user.record_failure(T0, policy)
    assert user.failed_logins == 2 and not user.locked(T0)
    user.record_failure(T0 + timedelta(seconds=5), policy)
    assert user.locked_until == T0 + timedelta(minutes=15, seconds=5)
    assert user.failed_logins == 0
    assert user.locked(T0 + timedelta(minutes=15))


def test_the_lock_expires_by_itself():
    policy = LockoutPolicy(max_failures=1, lock_for=timedelta(minutes=10))
    user = User("zhang", "hq", "", "", "hash")
    user.record_failure(T0, policy)
    assert user.locked(T0 + timedelta(minutes=10) - timedelta(microseconds=1))
    assert not user.locked(T0 + timedelta(minutes=10))
    assert not user.locked(T0 + timedelta(days=1))


def test_a_success_clears_failures_and_lock():
    policy = LockoutPolicy(max_failures=5)
    user = User("zhang", "hq", "", "", "hash")
    for _ in range(4):
        user.record_failure(T0, policy)
    user.record_success()
    assert user.failed_logins == 0 and user.locked_until is None
    user.record_failure(T0, policy)
    assert not user.locked(T0)  # the count started again
