"""Logs under SUPPLY_LOG_DIR rotate by size and keep a bounded number of old files."""

import json
import logging

import pytest

from services.common.config import ConfigError
from services.common.logs import correlation_id, setup_logging


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for h in root.handlers:
        h.close()
    root.handlers[:], root.level = handlers, level


def test_log_file_rotates_at_the_size_limit_and_keeps_the_backups(tmp_path, restore_root):
    env = {"SUPPLY_LOG_DIR": str(tmp_path), "SUPPLY_LOG_MAX_MB": "1", "SUPPLY_LOG_BACKUPS": "2"}
    setup_logging("intake", "worker", "INFO", env)
    log = logging.getLogger("test.rotation")
    token = correlation_id.set("cid-rotation")
    try:
        for i in range(4 * 1024):  # ~4 MiB of ~1 KiB lines
            log.info("line %d %s", i, "x" * 1000)
    finally:
        correlation_id.reset(token)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["intake-worker.log", "intake-worker.log.1", "intake-worker.log.2"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size <= 1024 * 1024
    last = json.loads((tmp_path / "intake-worker.log").read_text().splitlines()[-1])
    assert last["message"].startswith("line 4095 ")
    assert (last["correlation_id"], last["service"], last["process_kind"]) == (
        "cid-rotation", "intake", "worker")


def test_without_a_log_dir_the_json_goes_to_stdout(capsys, restore_root):
    setup_logging("intake", "api", "INFO", {})
    logging.getLogger("test.stdout").info("to stdout")
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["message"] == "to stdout"


def test_a_bad_size_limit_names_its_variable(tmp_path, restore_root):
    with pytest.raises(ConfigError, match="SUPPLY_LOG_MAX_MB"):
        setup_logging("intake", "api", "INFO", {"SUPPLY_LOG_DIR": str(tmp_path),
                                                 "SUPPLY_LOG_MAX_MB": "lots"})
