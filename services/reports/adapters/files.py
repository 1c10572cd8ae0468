"""The report's files on disk: each written to a temporary name in its folder and renamed, so a
reader (or the archive job) never sees half a file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from services.reports import render
from services.reports.domain.facts import DayFacts


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def report_files(facts: DayFacts) -> dict[str, bytes]:
    files = {"daily-report.md": render.markdown(facts).encode("utf-8"),
             "daily-report.xlsx": render.xlsx(facts),
             "disclosure.html": render.disclosure_html(facts).encode("utf-8")}
    for name, text in render.disclosure_csvs(facts).items():
        files[name] = text.encode("utf-8-sig")  # with BOM, for Excel
    return files


def write_files(facts: DayFacts, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in report_files(facts).items():
        write_atomic(out / name, data)
        written.append(out / name)
    return written


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
