"""deploy/prometheus and deploy/grafana: the alert rules load and fire when they should
(promtool), the dashboard is well-formed, and every metric either reads is one a real server
exports on GET /metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.promql import metric_names
from tests.deploy.tools import ALERTS, ALERTS_TEST, DASHBOARD, promtool, run
from tests.serve.server import OPERATOR_KEY, Backend, Server

# Made by Prometheus itself for every target, not exported by the server.
SCRAPE_SERIES = frozenset({"up"})
# Grafana's variables, as Prometheus would see them after Grafana substitutes them.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return found


def dashboard_expressions() -> list[str]:
    found = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expression = expression.replace(variable, value)
            found.append(expression)
    return found


def test_promtool_checks_the_rules() -> None:
    done = run([promtool(), "check", "rules", ALERTS])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def test_promtool_unit_tests_fire_and_stay_quiet() -> None:
    done = run([promtool(), "test", "rules", ALERTS_TEST.name], cwd=ALERTS_TEST.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    # every alert has a case where it fires and one where it does not
    document = yaml.safe_load(ALERTS_TEST.read_text())
    cases = [case for test in document["tests"] for case in test["alert_rule_test"]]
    for rule in alert_rules():
        outcomes = {bool(c["exp_alerts"]) for c in cases if c["alertname"] == rule["alert"]}
        assert outcomes == {True, False}, rule["alert"]


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: x\n    rules:\n"
        "      - alert: Broken\n        expr: sum(rate(aex_http_requests_total[5m])\n"
    )
    assert run([promtool(), "check", "rules", broken]).returncode != 0


def test_the_alerts_cover_errors_latency_dead_letters_redis_windows_and_breakers() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert set(rules) == {
        "AexInstanceDown",
        "AexHighErrorRate",
        "AexLatencyP99High",
        "AexWebhookDeadLetters",
        "AexRedisFailOpen",
        "AexBidWindowsCloseLate",
        "AexCircuitBreakerOpen",
    }
    for rule in rules.values():
        assert rule["labels"]["severity"] in {"page", "warning"}
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        assert 'job="aex"' in rule["expr"]
    assert "histogram_quantile(0.99" in rules["AexLatencyP99High"]["expr"]
    assert 'type="notification.dead_lettered"' in rules["AexWebhookDeadLetters"]["expr"]
    # outbox-fed counters are counted by every process: max, never sum, over instances
    assert rules["AexWebhookDeadLetters"]["expr"].strip().startswith("max(")


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "aex-exchange"
    assert board["schemaVersion"] >= 36
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        assert grid["w"] > 0
        assert grid["h"] > 0
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids)
    # no two panels overlap
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, panel["title"]
        cells |= mine


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses a rule's expression: one recording rule per dashboard query
    rules = [
        {"record": f"aex:dashboard_query_{i}", "expr": expression}
        for i, expression in enumerate(dashboard_expressions())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = run([promtool(), "check", "rules", path])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_the_name_extraction_finds_names_and_only_names() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, route) (rate(a_bucket{route!="x y"}[5m]))) > 1'
    ) == {"a_bucket"}
    assert metric_names("sum(rate(a_total[5m])) / on (job) group_left b offset 5m > 1e3") == {
        "a_total",
        "b",
    }


def series_names(exposition: str) -> set[str]:
    """Every series name the exposition can have, for families without samples yet too."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {family.name + suffix for suffix in suffixes.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """A real server on PostgreSQL and Redis (the fail-open counter exists only with Redis),
    scraped as Prometheus would."""
    backend = Backend("postgres")
    server = Server(tmp_path_factory.mktemp("metrics") / "data", env=backend.env).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            client.get("/health")
            # public today (serve/gateway/middleware.py); the key is what a scraper may send
            scraped = client.get("/metrics", headers={"X-API-Key": OPERATOR_KEY})
            assert scraped.status_code == 200
            yield series_names(scraped.text)
    finally:
        server.stop()
        backend.cleanup()


@pytest.mark.services
def test_every_metric_the_alerts_read_is_exported(exported: set[str]) -> None:
    read = {name for rule in alert_rules() for name in metric_names(rule["expr"])}
    assert "aex_http_request_duration_seconds_bucket" in read
    assert read - SCRAPE_SERIES <= exported, sorted(read - SCRAPE_SERIES - exported)


@pytest.mark.services
def test_every_metric_the_dashboard_reads_is_exported(exported: set[str]) -> None:
    read = {name for expression in dashboard_expressions() for name in metric_names(expression)}
    assert {"aex_gmv_total", "aex_platform_fees_total", "aex_redis_fail_open_total"} <= read
    assert read - SCRAPE_SERIES <= exported, sorted(read - SCRAPE_SERIES - exported)


@pytest.mark.services
def test_a_metric_the_server_does_not_export_would_be_caught(exported: set[str]) -> None:
    assert "aex_bid_window_overrun_seconds_bucket" not in exported
    assert "aex_http_requests_total" in exported
    assert re.fullmatch(r"aex_\w+", "aex_http_requests_total")
