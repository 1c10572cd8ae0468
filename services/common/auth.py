"""Who may call: the roles, the caller, and the signed per-person token (JWT) that the console
mints for the signed-in person and every service verifies. The one place for this contract:
both sides import it.

A token is HS256 over the shared key `SUPPLY_JWT_KEY`, with the claims `sub` (the person),
`role`, `scope` (the requester id a village worker, grid worker, unit or unit head acts for),
`iat`, `exp`, `jti`, `iss` = "county-supply-console", `aud` = "supply.v1". It lives at most
15 minutes; clocks may differ by 30 s. See docs/integration.md.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from services.common.errors import PermissionDenied, Unauthenticated

# Every role a service knows (RULES.md §1). A token or a configured static token with any
# other role is refused.
ROLES = (
    "admin",              # 系统管理员: anything
    "hq",                 # 指挥部: county-wide, reads and decides everything
    "depot_keeper",       # 仓库管理员
    "village",            # 村(居)专班
    "grid_worker",        # 网格员
    "unit",               # 单位 (hospital, school, nursing home …)
    "unit_head",          # 单位一把手
    "inspector",          # 捐赠检验
    "department",         # 协作部门 (市场监管, 交通, 民政, 卫健)
    "auditor",            # 纪委监督
    "operator",           # 冷库 / 仓库值班 (monitoring)
    "clerk",              # 随车押运员 (delivery clerk)
    "market_supervisor",  # 市场监管 price reporting
    "gateway",            # a gateway's own static token (alerts only, never people's data)
    "supermarket",        # 定点超市 / 保供点 staff (market): scope = the outlet id
)
# Roles that act for one requester (a supermarket: for one outlet): their scope is its id, and
# they see only what is theirs.
SCOPED_ROLES = ("village", "grid_worker", "unit", "unit_head", "supermarket")
COUNTY_WIDE_ROLES = ("admin", "hq")

ISSUER = "county-supply-console"
AUDIENCE = "supply.v1"
ALGORITHM = "HS256"
MAX_LIFETIME_S = 900
LEEWAY_S = 30
MIN_KEY_CHARS = 32


@dataclass(frozen=True)
class Caller:
    """Who is calling (from the caller's token): identity, role and scope (requester id)."""

    identity: str
    role: str
    scope: str = ""  # the requester id a village worker or unit acts for; '' = county-wide

    def require(self, *roles: str) -> None:
        """PermissionDenied unless the role is one of `roles` (admin may do anything)."""
        if self.role != "admin" and self.role not in roles:
            raise PermissionDenied(f"role {self.role!r} may not do this; needs one of {', '.join(roles)}")

    def require_for(self, requester_id: str, *roles: str) -> str:
        """Role check, and a caller bound to a requester (a scoped role, or any role but admin
        and hq given a scope) may act or read only for its own. Returns the requester meant:
        `requester_id`, or when none is named, the caller's own ('' for a county-wide caller:
        every requester)."""
        self.require(*roles)
        if self.role in COUNTY_WIDE_ROLES or not (self.scope or self.role in SCOPED_ROLES):
            return requester_id
        if not self.scope:
            raise PermissionDenied(f"{self.identity} ({self.role}) acts for no requester "
                                   f"/ 未绑定村居或单位")
        if requester_id and requester_id != self.scope:
            raise PermissionDenied(f"{self.identity} acts for {self.scope}, not {requester_id} "
                                   f"/ 只能查看或办理本村居(单位)的事项")
        return self.scope


def is_jwt(token: str) -> bool:
    """A signed token has three dot-separated parts; a static token has none."""
    return token.count(".") == 2


def mint_token(key: str, *, sub: str, role: str, scope: str = "", ttl_s: int = 300,
               now: float | None = None) -> str:
    """A signed token for person `sub` acting as `role` (for requester `scope`), valid `ttl_s`
    seconds from `now` (Unix time)."""
    if len(key or "") < MIN_KEY_CHARS:
        raise ValueError(f"the signing key must be at least {MIN_KEY_CHARS} characters")
    if not sub:
        raise ValueError("sub is required")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if role in SCOPED_ROLES and not scope:
        raise ValueError(f"role {role} needs a scope (the requester it acts for)")
    if not 0 < ttl_s <= MAX_LIFETIME_S:
        raise ValueError(f"ttl_s must be 1 … {MAX_LIFETIME_S}")
    issued = int(time.time() if now is None else now)
    claims = {"sub": sub, "role": role, "scope": scope or "", "iat": issued,
              "exp": issued + int(ttl_s), "jti": uuid.uuid4().hex, "iss": ISSUER, "aud": AUDIENCE}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


_REQUIRED = ("sub", "role", "iat", "exp", "jti", "iss", "aud")


def verify_token(key: str, token: str, now: float | None = None) -> Caller:
    """The caller a signed token names, once its signature, issuer, audience, lifetime and role
    check out; Unauthenticated otherwise (the message never repeats the token)."""
    if len(key or "") < MIN_KEY_CHARS:
        raise Unauthenticated("signed tokens are not accepted here / 本服务未配置签名令牌")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": list(_REQUIRED), "verify_exp": False,
                                     "verify_iat": False, "verify_nbf": False})
    except (jwt.InvalidAudienceError, jwt.InvalidIssuerError):
        raise Unauthenticated("token not issued for this system / 令牌不是本系统签发的") from None
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"token lacks the {exc.claim!r} claim / 令牌缺少必要内容") from None
    except jwt.InvalidTokenError:
        raise Unauthenticated("invalid or tampered token / 令牌无效或被篡改") from None
    iat, exp = claims["iat"], claims["exp"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
        raise Unauthenticated("token times must be whole seconds / 令牌时间格式无效")
    at = time.time() if now is None else now
    if exp + LEEWAY_S < at:
        raise Unauthenticated("token expired; sign in again / 令牌已过期，请重新登录")
    if iat - LEEWAY_S > at:
        raise Unauthenticated("token issued in the future; check clocks / 令牌签发时间晚于当前时间")
    if exp - iat > MAX_LIFETIME_S:
        raise Unauthenticated(f"token lives longer than {MAX_LIFETIME_S} s / 令牌有效期过长")
    sub, role, scope = claims["sub"], claims["role"], claims.get("scope") or ""
    if not isinstance(sub, str) or not sub.strip() or not isinstance(scope, str):
        raise Unauthenticated("token names no person / 令牌未注明用户")
    if role not in ROLES:
        raise Unauthenticated("token carries an unknown role / 令牌角色无效")
    if role in SCOPED_ROLES and not scope:
        raise Unauthenticated(f"role {role} needs a scope (the requester it acts for) "
                              f"/ 该角色须绑定村居或单位")
    return Caller(sub, role, scope)
