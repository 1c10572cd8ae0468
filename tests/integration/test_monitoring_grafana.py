"""The Grafana dashboard and datasource under deploy/grafana: well-formed, bound to the
provisioned datasource, and every InfluxQL query in it (panels, annotations, variables) accepted
by the real InfluxDB 1.x with Grafana's macros filled in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests
import yaml

from services.monitoring.adapters.influx import InfluxWriter
from services.monitoring.adapters.line_protocol import alarm_line, env_line
from tests.support.infra import INFLUX_URL

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
T0_MS = 1795852800000


def queries(dashboard: dict) -> list[str]:
    out = [t["query"] for p in dashboard["panels"] for t in p.get("targets", [])]
    out += [a["query"] for a in dashboard["annotations"]["list"] if "query" in a]
    out += [v["query"] for v in dashboard["templating"]["list"]]
    return out


def fill(q: str) -> str:
    q = q.replace("$timeFilter", f"time >= {T0_MS - 3600_000}ms AND time <= {T0_MS + 3600_000}ms")
    q = q.replace("$__interval", "60s")
    return re.sub(r"/\^\$(depot|zone)\$/", "/^(cs|chl)$/", q)


def test_dashboard_queries_run_on_influxdb_and_find_readings_and_alarms(tmp_path, influx_db):
    dashboard = json.loads((GRAFANA / "dashboards" / "supply-monitoring.json").read_text())
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "influxdb.yaml").read_text())
    uid = ds["datasources"][0]["uid"]
    assert ds["datasources"][0]["jsonData"]["version"] == "InfluxQL"
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"])
    assert {p["title"].split(" ")[0] for p in dashboard["panels"]} >= {"冷藏", "冷冻", "冷链药品", "易燃品库", "氧化剂库"}
    with InfluxWriter(INFLUX_URL, influx_db, tmp_path / "spool") as w:
        w.add([env_line("cs", "chl", "s1", "chilled", T0_MS + i * 60_000, 3.0 + i, 85.0, i) for i in range(5)])
        w.add(alarm_line("cs", "chl", "CHL_HOT_INSTANT", "alarm", "opened", 9.0, "a-1", T0_MS + 120_000, "s1"))
        w.flush()
    found = {}
    for q in queries(dashboard):
        r = requests.post(f"{INFLUX_URL}/query", data={"q": fill(q), "db": influx_db}, timeout=10)
        body = r.json()
        assert r.status_code == 200 and "error" not in body["results"][0], (q, body)
        found[q] = bool(body["results"][0].get("series"))
    chilled = next(t["query"] for p in dashboard["panels"] for t in p["targets"] if "'chilled'" in t["query"])
    opened = next(a["query"] for a in dashboard["annotations"]["list"] if "'opened'" in a.get("query", ""))
    assert found[chilled] and found[opened]
