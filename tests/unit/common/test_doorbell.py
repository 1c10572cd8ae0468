"""The outbox's doorbell: a ring wakes the relay of that database only; a second relay of the same
outbox polls; the bell's name ignores the password and where a SQLite path was written from."""

from __future__ import annotations

import os
import time

import pytest

from services.common import doorbell
from services.common.doorbell import Doorbell, address, ring

pytestmark = pytest.mark.skipif(not doorbell.SUPPORTED, reason="abstract unix sockets are Linux's")


def test_a_ring_wakes_the_waiting_relay_at_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    bell = Doorbell(url)
    try:
        assert bell.sock is not None
        assert bell.wait(0.01) is False
        ring(url)
        t = time.monotonic()
        assert bell.wait(10) is True
        assert time.monotonic() - t < 1
        assert bell.wait(0.01) is False  # rings already heard are drained
    finally:
        bell.close()


def test_another_database_does_not_ring_this_bell(tmp_path):
    bell = Doorbell(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        ring(f"sqlite:///{tmp_path / 'b.db'}")
        ring("postgresql+psycopg://postgres@127.0.0.1:5432/other")
        assert bell.wait(0.05) is False
    finally:
        bell.close()


def test_a_second_relay_of_one_outbox_polls_and_a_ring_with_nobody_listening_is_dropped(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    ring(url)  # nobody listens: no error
    first, second = Doorbell(url), Doorbell(url)
    try:
        assert first.sock is not None and second.sock is None
        t = time.monotonic()
        assert second.wait(0.05) is False
        assert time.monotonic() - t >= 0.04
    finally:
        first.close()
        second.close()


def test_the_bell_is_named_by_the_database_not_by_its_password_or_the_working_directory(tmp_path, monkeypatch):
    pg = "postgresql+psycopg://intake:secret@db:5432/intake"
    assert address(pg) == address("postgresql+psycopg://intake:other@db:5432/intake")
    assert address(pg) != address("postgresql+psycopg://intake:secret@db:5432/market")
    assert b"secret" not in address(pg)
    monkeypatch.chdir(tmp_path)
    os.makedirs("var", exist_ok=True)
    assert address("sqlite:///var/intake.db") == address(f"sqlite:///{tmp_path / 'var' / 'intake.db'}")
    assert address("sqlite:///var/intake.db").startswith(b"\0")


def test_a_bell_whose_socket_was_closed_under_a_waiting_relay_answers_not_rung(tmp_path):
    """The relay thread may hold the socket while another thread closes the bell."""
    bell = Doorbell(f"sqlite:///{tmp_path / 'a.db'}")
    sock = bell.sock
    bell.close()
    bell.sock = sock  # what the waiting thread still holds
    assert bell.wait(0.01) is False
