"""Translations: gettext catalogues (locale/<lang>/LC_MESSAGES/*.po, one file per area of the
console, merged) read with Babel at start, no compile step. Messages are written in English in
the templates and code; zh_CN is the default language of the console."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = {"zh_CN": "中文", "en": "English"}
DEFAULT = "zh_CN"


@cache
def translations(lang: str) -> NullTranslations:
    """The catalogue of `lang` (English needs none: the messages are English)."""
    files = sorted((LOCALE_DIR / lang / "LC_MESSAGES").glob("*.po")) if lang in LANGUAGES else []
    if not files:
        return NullTranslations()
    merged = None
    for po in files:
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        part = Translations(fp=buf)
        merged = part if merged is None else merged.merge(part)
    return merged


def pick(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT
