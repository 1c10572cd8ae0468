"""The signed per-person token (services/common/auth.py) and the caller's role and scope checks."""

import base64
import json

import jwt
import pytest

from services.common.auth import (
    AUDIENCE,
    ISSUER,
    ROLES,
    SCOPED_ROLES,
    Caller,
    is_jwt,
    mint_token,
    verify_token,
)
from services.common.errors import PermissionDenied, Unauthenticated

KEY = "test-jwt-key-0123456789abcdef0123456789"
OTHER_KEY = "another-jwt-key-0123456789abcdef012345"
NOW = 1_800_000_000.0


def refused(token: str, key: str = KEY, now: float = NOW) -> str:
    with pytest.raises(Unauthenticated) as exc:
        verify_token(key, token, now=now)
    assert token not in exc.value.message
    assert any("\u4e00" <= ch <= "\u9fff" for ch in exc.value.message)  # bilingual
    return exc.value.message


def signed(claims: dict, key: str = KEY) -> str:
    base = {"sub": "li.ming", "role": "hq", "scope": "", "iat": int(NOW), "exp": int(NOW) + 300,
            "jti": "a" * 32, "iss": ISSUER, "aud": AUDIENCE}
    return jwt.encode({k: v for k, v in {**base, **claims}.items() if v is not None}, key,
                      algorithm="HS256")


def test_a_minted_token_names_the_person_role_and_scope():
    token = mint_token(KEY, sub="wang.fang", role="village", scope="V-001", ttl_s=300, now=NOW)
    assert is_jwt(token)
    assert verify_token(KEY, token, now=NOW + 299) == Caller("wang.fang", "village", "V-001")
    claims = jwt.decode(token, KEY, algorithms=["HS256"], audience=AUDIENCE,
                        options={"verify_exp": False, "verify_iat": False})
    assert claims["iss"] == ISSUER and claims["exp"] - claims["iat"] == 300
    assert len(claims["jti"]) == 32
    assert claims["jti"] != jwt.decode(mint_token(KEY, sub="wang.fang", role="hq", now=NOW), KEY,
                                       algorithms=["HS256"], audience=AUDIENCE,
                                       options={"verify_exp": False, "verify_iat": False})["jti"]


def test_expiry_allows_thirty_seconds_of_clock_difference():
    token = mint_token(KEY, sub="wang.fang", role="hq", ttl_s=60, now=NOW)
    assert verify_token(KEY, token, now=NOW + 60 + 30).identity == "wang.fang"
    assert "expired" in refused(token, now=NOW + 60 + 31)
    assert "future" in refused(token, now=NOW - 31)


def test_a_token_signed_with_another_key_is_refused():
    assert "invalid" in refused(mint_token(OTHER_KEY, sub="x", role="hq", now=NOW))


@pytest.mark.parametrize("claims", [{"aud": "someone.else"}, {"iss": "another-console"}])
def test_a_token_for_another_audience_or_from_another_issuer_is_refused(claims):
    assert "not issued for this system" in refused(signed(claims))


def test_a_token_that_lives_longer_than_fifteen_minutes_is_refused():
    assert verify_token(KEY, signed({"exp": int(NOW) + 900}), now=NOW).role == "hq"
    assert "longer than 900" in refused(signed({"exp": int(NOW) + 901}))
    with pytest.raises(ValueError):
        mint_token(KEY, sub="x", role="hq", ttl_s=901, now=NOW)


def test_an_unknown_role_is_refused():
    assert "unknown role" in refused(signed({"role": "superuser"}))
    with pytest.raises(ValueError):
        mint_token(KEY, sub="x", role="superuser", now=NOW)


@pytest.mark.parametrize("role", SCOPED_ROLES)
def test_a_scoped_role_without_a_scope_is_refused(role):
    assert "needs a scope" in refused(signed({"role": role, "scope": ""}))
    with pytest.raises(ValueError):
        mint_token(KEY, sub="x", role=role, now=NOW)


def test_a_tampered_payload_is_refused():
    token = mint_token(KEY, sub="wang.fang", role="village", scope="V-001", now=NOW)
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(role="hq", scope="")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert "tampered" in refused(f"{head}.{forged}.{sig}")


@pytest.mark.parametrize("claims, message", [
    ({"jti": None}, "jti"), ({"sub": None}, "sub"), ({"exp": None}, "exp"),
    ({"sub": " "}, "no person"), ({"exp": "soon"}, "whole seconds")])
def test_a_token_without_its_claims_is_refused(claims, message):
    assert message in refused(signed(claims))


def test_other_algorithms_and_short_keys_are_refused():
    assert "invalid" in refused(jwt.encode({"sub": "x", "role": "hq"}, KEY * 2, algorithm="HS512"))
    assert "invalid" in refused("not.a.token")
    assert "not accepted" in refused(mint_token(KEY, sub="x", role="hq", now=NOW), key="")
    with pytest.raises(ValueError):
        mint_token("short-key", sub="x", role="hq", now=NOW)


def test_roles_cover_every_role_the_services_check():
    from services.allocation.handlers import base as allocation
    from services.intake.handlers import base as intake
    from services.logistics.handlers import base as logistics
    from services.monitoring.handlers import base as monitoring

    used = {role for module in (intake, allocation, logistics, monitoring)
            for name, value in vars(module).items() if name.endswith("_ROLES")
            for role in value}
    assert used <= set(ROLES)


def test_a_scoped_caller_acts_and_reads_only_for_its_own_requester():
    village = Caller("wang.fang", "village", "V-001")
    assert village.require_for("V-001", "village") == "V-001"
    assert village.require_for("", "village") == "V-001"  # a list is narrowed to its own
    with pytest.raises(PermissionDenied):
        village.require_for("V-002", "village")
    with pytest.raises(PermissionDenied):
        village.require_for("V-001", "hq")
    with pytest.raises(PermissionDenied):  # a scoped role bound to nothing sees nothing
        Caller("x", "grid_worker").require_for("", "grid_worker")
    assert Caller("chen", "hq").require_for("", "hq") == ""  # county-wide
    assert Caller("it", "admin").require_for("V-002", "hq") == "V-002"
    assert Caller("keeper", "depot_keeper").require_for("V-002", "depot_keeper") == "V-002"
