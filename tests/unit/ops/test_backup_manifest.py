"""What makes a backup directory whole (services.ops.manifest) and verify() over one on disk:
a restore must refuse a partial, changed or padded backup and say which file is wrong."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from services.ops.backup import verify
from services.ops.manifest import (
    FORMAT,
    KIND,
    MANIFEST,
    SUMS,
    BackupRefused,
    file_problems,
    manifest_problems,
    parse_sums,
    sums_text,
)

FILES = {"intake.dump": b"PGDMP intake", "logistics.dump": b"PGDMP ledger",
         "influx/20261129T093000Z.meta": b"meta", "influx/20261129T093000Z.s2.tar.gz": b"shard"}


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def whole_backup(root: Path) -> Path:
    """A backup directory as backup() leaves it: files, manifest, then SHA256SUMS."""
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    files = {rel: {"bytes": len(data), "sha256": digest(data)} for rel, data in FILES.items()}
    manifest = {"kind": KIND, "format": FORMAT, "started_at": "2026-11-29T09:30:00+00:00",
                "databases": [{"service": "intake", "kind": "postgresql", "file": "intake.dump",
                               "alembic": ["0002"], "bytes": 12},
                              {"service": "logistics", "kind": "postgresql", "file": "logistics.dump",
                               "alembic": ["0002"], "bytes": 12}],
                "influx": {"database": "supply", "dir": "influx"}, "files": files}
    (root / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    sums = {rel: f["sha256"] for rel, f in files.items()}
    sums[MANIFEST] = digest((root / MANIFEST).read_bytes())
    (root / SUMS).write_text(sums_text(sums), encoding="utf-8")
    return root


def refusal(root: Path) -> str:
    with pytest.raises(BackupRefused) as caught:
        verify(root)
    return str(caught.value)


def test_a_whole_backup_is_accepted_and_its_manifest_returned(tmp_path):
    manifest = verify(whole_backup(tmp_path))
    assert [db["service"] for db in manifest["databases"]] == ["intake", "logistics"]


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="coreutils' sha256sum not installed")
def test_the_checksums_file_is_what_sha256sum_checks(tmp_path):
    done = subprocess.run(["sha256sum", "--check", "--strict", SUMS], cwd=whole_backup(tmp_path),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": OK") == len(FILES) + 1


def test_without_the_checksums_file_the_backup_is_partial(tmp_path):
    (whole_backup(tmp_path) / SUMS).unlink()
    assert "did not finish (partial)" in refusal(tmp_path)


def test_a_changed_dump_is_named(tmp_path):
    with (whole_backup(tmp_path) / "logistics.dump").open("ab") as f:
        f.write(b"x")
    message = refusal(tmp_path)
    assert "logistics.dump: SHA-256 mismatch" in message and "intake.dump" not in message


def test_a_missing_file_and_a_foreign_file_are_each_named(tmp_path):
    root = whole_backup(tmp_path)
    (root / "influx" / "20261129T093000Z.s2.tar.gz").unlink()
    (root / "notes.txt").write_text("added later")
    message = refusal(root)
    assert "influx/20261129T093000Z.s2.tar.gz: missing (partial backup)" in message
    assert "notes.txt: not listed in SHA256SUMS" in message


def test_a_manifest_rewritten_after_the_checksums_is_refused(tmp_path):
    root = whole_backup(tmp_path)
    manifest = json.loads((root / MANIFEST).read_text())
    manifest["databases"][0]["alembic"] = ["9999"]
    (root / MANIFEST).write_text(json.dumps(manifest))
    assert "manifest.json: SHA-256 mismatch" in refusal(root)


def test_an_unreadable_checksums_line_or_a_path_outside_the_backup_is_refused():
    with pytest.raises(BackupRefused, match="line 2"):
        parse_sums(f"{'a' * 64}  intake.dump\nnot a checksum line\n")
    with pytest.raises(BackupRefused, match="line 1"):
        parse_sums(f"{'a' * 64}  ../etc/passwd\n")
    assert parse_sums(sums_text({"b": "1" * 64, "a/x": "2" * 64})) == {"a/x": "2" * 64, "b": "1" * 64}


def test_file_problems_name_each_file_once():
    listed = {"a.dump": "1" * 64, "b.dump": "2" * 64}
    found = {"a.dump": "1" * 64, "b.dump": "3" * 64, "c.dump": "4" * 64}
    problems = file_problems(listed, found)
    assert len(problems) == 2 and problems[0].startswith("b.dump: SHA-256 mismatch")
    assert problems[1].startswith("c.dump: not listed")


def test_the_manifest_must_name_exactly_the_files_checked(tmp_path):
    manifest = json.loads((whole_backup(tmp_path) / MANIFEST).read_text())
    listed = parse_sums((tmp_path / SUMS).read_text())
    assert manifest_problems(manifest, listed) == []
    del manifest["files"]["intake.dump"]
    problems = manifest_problems(manifest, listed)
    assert any(p.startswith("intake.dump: in one of manifest.json and SHA256SUMS") for p in problems)
    assert any(p.startswith("intake.dump: a database dump the manifest names") for p in problems)


def test_another_format_or_kind_is_refused_before_anything_else():
    assert "format 2" in manifest_problems({"kind": KIND, "format": 2}, {})[0]
    assert "not a county supply backup" in manifest_problems({"kind": "other"}, {})[0]
