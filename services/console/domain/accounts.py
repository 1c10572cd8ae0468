"""Console accounts: who may sign in, as which role, for which requester; lock-out after
repeated wrong passwords; idle and absolute session expiry. Pure rules, no I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.common.errors import InvalidInput

# The people of RULES.md §1 and where each lands after signing in.
HOME = {
    "admin": "/hq",
    "hq": "/hq",
    "village": "/village",
    "grid_worker": "/village",
    "unit": "/unit",
    "unit_head": "/unit",
    "inspector": "/inspect",
    "depot_keeper": "/depot",
    "auditor": "/hq/reports",
    "department": "/hq/reports",
    "supermarket": "/market/outlet",
}
ROLES = tuple(HOME)
SCOPED = ("village", "grid_worker", "unit", "unit_head", "supermarket")  # scope = the requester (outlet) they act for
ROLE_NAMES = {
    "admin": ("系统管理员", "administrator"),
    "hq": ("指挥部", "county HQ"),
    "village": ("村居专班", "village worker"),
    "grid_worker": ("网格员", "grid worker"),
    "unit": ("单位", "unit"),
    "unit_head": ("单位一把手", "unit head"),
    "inspector": ("捐赠检验", "donation inspector"),
    "depot_keeper": ("仓库管理员", "depot keeper"),
    "auditor": ("纪委监督", "auditor"),
    "department": ("协作部门", "department"),
    "supermarket": ("定点超市", "supermarket"),
}

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
SCOPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 128  # argon2 hashes anything, but a 1 MB password is an attack, not a password


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    lock_for: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)
    token_ttl_s: int = 300  # the signed token the console sends to the services as the person


@dataclass
class User:
    username: str
    role: str
    scope: str
    display_name: str
    password_hash: str
    failed_logins: int = 0
    locked_until: datetime | None = None
    disabled: bool = False

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def record_failure(self, now: datetime, policy: LockoutPolicy) -> None:
        self.failed_logins += 1
        if self.failed_logins >= policy.max_failures:
            self.locked_until = now + policy.lock_for
            self.failed_logins = 0

    def record_success(self) -> None:
        self.failed_logins = 0
        self.locked_until = None

    @property
    def home(self) -> str:
        return HOME[self.role]


def clean_text(field: str, value: str, *, max_len: int, required: bool = True) -> str:
    """NFC-normalised, stripped, no control characters, at most max_len characters."""
    value = unicodedata.normalize("NFC", value or "").strip()
    if required and not value:
        raise InvalidInput(field, "required / 必填")
    if len(value) > max_len:
        raise InvalidInput(field, f"at most {max_len} characters / 最多{max_len}个字符")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidInput(field, "control characters are not allowed / 不能含控制字符")
    return value


def check_new_user(username: str, role: str, scope: str, password: str, display_name: str = "") -> None:
    """Raise InvalidInput naming the first bad field of a new account."""
    if not USERNAME.match(username or ""):
        raise InvalidInput("username", "2-40 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
                                       " / 用户名须为2-40位小写字母、数字或 . _ -")
    if role not in ROLES:
        raise InvalidInput("role", f"one of {', '.join(ROLES)} / 角色无效")
    if role in SCOPED and not scope:
        raise InvalidInput("scope", "a village, community or unit id is required for this role"
                                    " / 该角色须绑定村(社区)或单位编号")
    if scope and not SCOPE.match(scope):
        raise InvalidInput("scope", "1-64 of letters, digits, '_', '.', ':', '-' / 编号格式无效")
    check_password(password)
    clean_text("display_name", display_name, max_len=60, required=False)


def check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput("password", f"at least {MIN_PASSWORD} characters / 密码至少{MIN_PASSWORD}位")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("password", f"at most {MAX_PASSWORD} characters / 密码最多{MAX_PASSWORD}位")
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise InvalidInput("password", "control characters are not allowed / 不能含控制字符")
