"""Read-only InfluxQL over the v1 HTTP API for the gRPC API process (which writes nothing to
InfluxDB, so it needs no spool). Same error type as the writer."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from services.monitoring.adapters.influx import InfluxError, query_series
from services.monitoring.adapters.line_protocol import quote_ident


@dataclass(frozen=True)
class HistoryPoint:
    """One downsampling bucket of one sensor."""

    time: datetime
    temp_mean_c: float
    temp_min_c: float
    temp_max_c: float
    rh_mean: float | None
    count: int


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

    def sensor_history(self, depot: str, zone: str, sensor: str, start: datetime, end: datetime,
                       seconds: int) -> dict[str, list[HistoryPoint]]:
        """Measurement `env` of a zone (or one sensor) over [start, end) in buckets of `seconds`
        starting at `start`, by sensor in name order. Raises InfluxError."""
        params = {"depot": depot, "zone": zone}
        where = f"{quote_ident('depot')} = $depot AND {quote_ident('zone')} = $zone"
        if sensor:
            where += f" AND {quote_ident('sensor')} = $sensor"
            params["sensor"] = sensor
        start_ms = int(start.timestamp() * 1000)
        end_ms = int(end.timestamp() * 1000)
        q = (f"SELECT mean(temp_c), min(temp_c), max(temp_c), mean(rh), count(temp_c) FROM env "
             f"WHERE {where} AND time >= {start_ms}ms AND time < {end_ms}ms "
             f"GROUP BY time({seconds}s, {(start_ms // 1000) % seconds}s), {quote_ident('sensor')} fill(none)")
        out: dict[str, list[HistoryPoint]] = {}
        for s in sorted(self.query(q, params), key=lambda s: s.get("tags", {}).get("sensor", "")):
            out[s.get("tags", {}).get("sensor", "")] = [
                HistoryPoint(datetime.fromtimestamp(t_ms / 1000, UTC), mean, lo, hi, rh, n)
                for t_ms, mean, lo, hi, rh, n in s["values"]]
        return out
