"""User text made harmless in the files we write for people to open: spreadsheets (CSV, XLSX)
and Markdown. One place, used by every writer of such files."""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP "CSV injection": what a spreadsheet evaluates
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")  # what a Markdown viewer would take for raw HTML
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def spreadsheet_cell(value):
    """A text that a spreadsheet would read as a formula, with a leading apostrophe (it then shows
    as the text it is); numbers, and texts that are plain numbers such as "-5", unchanged. A text
    that already starts with an apostrophe gets one too, so that `spreadsheet_text` gives back
    exactly what went in (the ledger export is verified from the file, byte for byte)."""
    if isinstance(value, str) and (value.startswith(FORMULA_START) and not _NUMBER.match(value)
                                   or value.startswith("'")):
        return "'" + value
    return value


def spreadsheet_text(value):
    """What a cell we wrote stands for: the one apostrophe `spreadsheet_cell` added is taken off
    (so a sheet we exported imports as the text that went out); any other value is as it is."""
    if isinstance(value, str) and value.startswith("'") and spreadsheet_cell(value[1:]) == value:
        return value[1:]
    return value


def markdown_text(value) -> str:
    """A value in Markdown: nothing a viewer would take for raw HTML (a tag or comment start is
    written as &lt;; "6 < 15" stays readable), one line, no stray table pipe."""
    return _TAG_START.sub("&lt;", str(value)).replace("|", "\\|").replace("\n", " ")
