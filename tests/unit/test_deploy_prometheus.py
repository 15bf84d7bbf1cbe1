"""deploy/: the alert rules checked and unit-tested by promtool (Debian's prometheus package), the
scrape config checked, and the Grafana dashboard's structure and every query's PromQL, each
naming only metrics voxloop exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from voxloop.metrics.registry import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "voxloop.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (apt install prometheus)"
)


def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    assert PROMTOOL is not None
    done = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def exported() -> set[str]:
    """Every series name voxloop exposes (a histogram's _bucket, _count and _sum; a counter's _total)."""
    suffixes = {"histogram": ("_bucket", "_count", "_sum"), "counter": ("_total",), "gauge": ("",)}
    return {f.name + s for f in Metrics().registry.collect() for s in suffixes[f.type]}


def named(expr: str) -> set[str]:
    return set(re.findall(r"\bvoxloop_[a-z0-9_]+", expr))


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


@needs_promtool
def test_the_alert_rules_pass_promtool_check() -> None:
    assert "SUCCESS: 4 rules found" in promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_the_alert_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


@needs_promtool
def test_the_scrape_config_is_valid_and_scrapes_voxloop() -> None:
    promtool("check", "config", "prometheus.yml")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "voxloop")
    assert job["metrics_path"] == "/metrics" and config["rule_files"] == ["alerts.yml"]


def test_the_rules_page_on_the_seeds_p95_and_name_only_exported_metrics() -> None:
    rules = {
        r["alert"]: r
        for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for r in g["rules"]
    }
    assert {"VoxloopVoiceToVoiceSlow", "VoxloopProviderErrors", "VoxloopSessionsStuck"} <= set(rules)
    slow = rules["VoxloopVoiceToVoiceSlow"]
    assert "histogram_quantile(0.95" in slow["expr"] and slow["expr"].strip().endswith("> 1")
    assert slow["for"] == "3m" and slow["labels"]["severity"] == "page"
    names = exported()
    for rule in rules.values():
        assert named(rule["expr"]) <= names, rule["alert"]


def test_the_dashboard_is_well_formed() -> None:
    d = dashboard()
    assert d["uid"] == "voxloop" and d["panels"]
    variables = {v["name"] for v in d["templating"]["list"]}
    assert {"datasource", "job"} <= variables
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
        assert p["targets"] and all(t["expr"] and t["refId"] for t in p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${datasource}"
    titles = " ".join(p["title"].lower() for p in d["panels"])
    for part in ("voice to voice", "stages", "errors", "sessions", "percentiles"):
        assert part in titles
    all_named = set().union(*map(named, exprs()))
    assert all_named <= exported()
    for metric in (
        "voxloop_v2v_seconds_bucket",
        "voxloop_stage_seconds_bucket",
        "voxloop_provider_errors_total",
        "voxloop_active_sessions",
    ):
        assert metric in all_named


def grafana_to_promql(expr: str) -> str:
    """A dashboard query as Prometheus would get it from Grafana (its variables filled in)."""
    return expr.replace("$__rate_interval", "1m").replace("$job", ".*")


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"voxloop:dashboard_query_{i}", "expr": grafana_to_promql(e)}
        for i, e in enumerate(exprs())
    ]
    (tmp_path / "queries.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in promtool("check", "rules", "queries.yml", cwd=tmp_path)
