"""Every message of the console has a Chinese (zh_CN, the default language) translation.

The messages are extracted the way `pybabel extract` does it, with services/console/babel.cfg
(Python files and the Jinja2 templates), plus the two kinds of message Babel cannot see:
`gettext_of(request)("…")` (the call is not named `_`) and `_(plan_status[…])` in the HQ
templates (the msgid is a value of pages_hq.PLAN_STATUS). The zh_CN catalogues are every
locale/zh_CN/LC_MESSAGES/*.po, one per area of the console, merged at start by i18n.py."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jinja2 import Environment, nodes

from services.console import i18n

CONSOLE = Path(i18n.__file__).resolve().parent
CATALOGUE_DIR = CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES"
PLACEHOLDER = re.compile(r"%\((\w+)\)")


def _babel_messages() -> dict[str, set[str]]:
    """msgid → the files it is in, as `pybabel extract -F babel.cfg` finds them."""
    with (CONSOLE / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f, "babel.cfg")
    found: dict[str, set[str]] = defaultdict(set)
    for filename, _lineno, message, _comments, _context in extract_from_dir(CONSOLE, method_map, options_map):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found[msgid].add(filename)
    return found


def _gettext_of_calls(path: Path) -> list[str]:
    """String literals in `gettext_of(…)("…")` calls, which Babel's extractor does not see."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Call)
                and isinstance(node.func.func, ast.Name) and node.func.func.id == "gettext_of"
                and node.args and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            out.append(node.args[0].value)
    return out


@pytest.fixture(scope="module")
def messages() -> dict[str, set[str]]:
    found = _babel_messages()
    for path in sorted(CONSOLE.rglob("*.py")):
        for msgid in _gettext_of_calls(path):
            found[msgid].add(str(path.relative_to(CONSOLE)))
    from services.console.entrypoints import pages_hq

    for status in pages_hq.PLAN_STATUS.values():  # translated in the templates as _(plan_status[…])
        found[status].add("entrypoints/pages_hq.py (PLAN_STATUS)")
    return dict(found)


@pytest.fixture(scope="module")
def po_files() -> dict[str, dict[str, object]]:
    """catalogue file name → {msgid: msgstr} of its translated (not fuzzy) entries."""
    out = {}
    for po in sorted(CATALOGUE_DIR.glob("*.po")):
        with po.open("rb") as f:
            catalog = read_po(f, locale="zh_CN")
        out[po.name] = {m.id[0] if isinstance(m.id, tuple) else m.id: m.string
                        for m in catalog if m.id and not m.fuzzy}
    return out


def _translated(value: object) -> bool:
    if isinstance(value, tuple | list):
        return bool(value) and all(isinstance(v, str) and v.strip() for v in value)
    return isinstance(value, str) and bool(value.strip())


def test_the_extraction_finds_the_consoles_messages(messages):
    # a guard on the test itself: templates, Python and the two kinds Babel cannot see
    assert "Sign in" in messages and "templates/login.html" in messages["Sign in"]
    assert "This page is not for your role" in messages
    assert "Please sign in again" in messages
    assert {"proposed", "approved", "rejected", "superseded"} <= set(messages)


def test_no_message_escapes_the_extraction():
    """A msgid computed at run time (_(variable)) is invisible to the extraction, so to the test
    above: the only ones allowed are the plan statuses, which `messages` adds by hand."""
    computed = []
    env = Environment(extensions=["jinja2.ext.i18n"])
    for path in sorted((CONSOLE / "templates").rglob("*.html")):
        for call in env.parse(path.read_text(encoding="utf-8")).find_all(nodes.Call):
            if not (isinstance(call.node, nodes.Name) and call.node.name in ("_", "gettext", "ngettext")):
                continue
            arg = call.args[0] if call.args else None
            status = isinstance(arg, nodes.Getitem) and getattr(arg.node, "name", "") == "plan_status"
            if not isinstance(arg, nodes.Const) and not status:
                computed.append(f"{path.relative_to(CONSOLE)}:{call.lineno}")
    for path in sorted(CONSOLE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("_", "gettext", "ngettext")
                    and not (node.args and isinstance(node.args[0], ast.Constant))):
                computed.append(f"{path.relative_to(CONSOLE)}:{node.lineno}")
    assert not computed, f"messages computed at run time, not extractable: {computed}"


def test_every_message_has_a_chinese_translation(messages, po_files):
    merged: dict[str, object] = {}
    for entries in po_files.values():
        merged.update(entries)
    missing = sorted((sorted(files)[0], msgid) for msgid, files in messages.items()
                     if not _translated(merged.get(msgid)))
    if missing:
        report = "\n".join(f"  {where}: {msgid!r}" for where, msgid in missing)
        pytest.fail(f"{len(missing)} messages without a zh_CN translation:\n{report}", pytrace=False)


def test_translations_keep_the_placeholders_of_their_msgid(po_files):
    wrong = []
    for name, entries in po_files.items():
        for msgid, msgstr in entries.items():
            if not _translated(msgstr):
                continue
            want = set(PLACEHOLDER.findall(msgid))
            for text in msgstr if isinstance(msgstr, tuple | list) else [msgstr]:
                if set(PLACEHOLDER.findall(text)) != want:
                    wrong.append(f"{name}: {msgid!r} → {text!r}")
                elif want:
                    try:  # what gettext_of does with the values: a stray % would fail here
                        text % dict.fromkeys(want, "x")
                    except (ValueError, TypeError, KeyError) as exc:
                        wrong.append(f"{name}: {msgid!r} → {text!r} ({exc})")
    assert not wrong, "translations whose placeholders differ from the msgid:\n" + "\n".join(wrong)


def test_a_message_in_two_catalogues_reads_the_same_in_both(po_files):
    # the catalogues are merged, the last file silently wins: two areas must not disagree
    seen: dict[str, dict[object, list[str]]] = defaultdict(lambda: defaultdict(list))
    for name, entries in po_files.items():
        for msgid, msgstr in entries.items():
            if _translated(msgstr):
                seen[msgid][tuple(msgstr) if isinstance(msgstr, list) else msgstr].append(name)
    clashes = {msgid: dict(by) for msgid, by in seen.items() if len(by) > 1}
    assert not clashes, f"one msgid, different translations: {clashes}"


def test_the_merged_catalogues_load():
    zh = i18n.translations("zh_CN")
    assert zh.gettext("Sign in") == "登录"
    assert zh.gettext("proposed") == "待审批"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"  # English needs no catalogue
