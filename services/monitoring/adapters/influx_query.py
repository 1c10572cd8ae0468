"""Read-only InfluxQL over the v1 HTTP API for the gRPC API process (which writes nothing to
InfluxDB, so it needs no spool). Same error type as the writer."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import requests

from services.monitoring.adapters.influx import InfluxError, query_series


class InfluxReader:
    def __init__(self, url: str, db: str, timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.db = db
        self.timeout = timeout
        self._local = threading.local()  # requests.Session is not thread-safe: one per thread

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = requests.Session()
        return s

    def query(self, influxql: str, params: Mapping[str, Any] | None = None,
              epoch: str = "ms") -> list[dict]:
        form = {"q": influxql, "db": self.db, "epoch": epoch}
        if params:
            form["params"] = json.dumps(params)
        try:
            r = self._session().post(f"{self.url}/query", data=form, timeout=self.timeout)
        except requests.RequestException as e:
            raise InfluxError(f"query failed: {e}") from e
        return query_series(r)
