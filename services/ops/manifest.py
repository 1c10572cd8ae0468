"""What makes a backup directory whole: its manifest and its checksums (pure; no I/O).

A backup directory holds one dump per database, InfluxDB's portable backup under influx/,
manifest.json (what, when, versions, alembic revisions, sizes) and SHA256SUMS, written last,
in `sha256sum` format so that `sha256sum -c SHA256SUMS` checks a copy anywhere. A directory
without SHA256SUMS is a backup that did not finish.
"""

from __future__ import annotations

import re

FORMAT = 1
KIND = "county-supply-backup"
MANIFEST = "manifest.json"
SUMS = "SHA256SUMS"
INFLUX_DIR = "influx"

_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


class BackupRefused(Exception):
    """A backup that must not be restored (or cannot be taken), with every reason found."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


def sums_text(digests: dict[str, str]) -> str:
    """`sha256sum` lines, sorted by path (relative, with /)."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(digests.items()))


def parse_sums(text: str) -> dict[str, str]:
    digests: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        m = _SUM_LINE.match(line)
        if not m or m.group(2).startswith("/") or ".." in m.group(2).split("/"):
            raise BackupRefused(f"{SUMS} line {n} is not `<sha256>  <relative path>`: {line[:80]!r} "
                                f"/ 校验文件第 {n} 行格式错误")
        digests[m.group(2)] = m.group(1)
    return digests


def file_problems(listed: dict[str, str], found: dict[str, str]) -> list[str]:
    """Compare the checksums SHA256SUMS lists with those of the files present (both path →
    sha256, SHA256SUMS itself left out): each file missing, changed or not listed."""
    problems = []
    for path in sorted(listed.keys() - found.keys()):
        problems.append(f"{path}: missing (partial backup) / 文件缺失（备份不完整）")
    for path in sorted(listed.keys() & found.keys()):
        if listed[path] != found[path]:
            problems.append(f"{path}: SHA-256 mismatch, expected {listed[path][:16]}…, found "
                            f"{found[path][:16]}… / 校验值不符，文件已损坏或被改动")
    for path in sorted(found.keys() - listed.keys()):
        problems.append(f"{path}: not listed in {SUMS} (not part of this backup) / 文件不属于本备份")
    return problems


def manifest_problems(manifest: dict, listed: dict[str, str]) -> list[str]:
    """The manifest is one this code reads, and names exactly the files SHA256SUMS lists."""
    if manifest.get("kind") != KIND:
        return [f"{MANIFEST}: not a county supply backup (kind {manifest.get('kind')!r}) / 不是本系统的备份"]
    if manifest.get("format") != FORMAT:
        return [f"{MANIFEST}: format {manifest.get('format')!r}, this release reads format {FORMAT} "
                f"/ 备份格式版本不符"]
    problems = []
    files = manifest.get("files", {})
    for path in sorted(files.keys() ^ (listed.keys() - {MANIFEST})):
        problems.append(f"{path}: in one of {MANIFEST} and {SUMS} but not the other / 清单与校验文件不一致")
    for path in sorted(files.keys() & listed.keys()):
        if files[path]["sha256"] != listed[path]:
            problems.append(f"{path}: {MANIFEST} and {SUMS} disagree on its SHA-256 / 清单与校验文件不一致")
    dumps = {db["file"] for db in manifest.get("databases", [])}
    for path in sorted(dumps - files.keys()):
        problems.append(f"{path}: a database dump the manifest names is not in the backup / 数据库备份文件缺失")
    influx = manifest.get("influx")
    if influx and not any(p.startswith(INFLUX_DIR + "/") for p in files):
        problems.append(f"{INFLUX_DIR}/: the InfluxDB backup is empty / InfluxDB 备份为空")
    return problems
