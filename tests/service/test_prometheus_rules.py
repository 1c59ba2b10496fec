"""The fleet's alert rules: promtool checks and unit-tests them, and every series they and
their tests use is shaped like a running agent's real /metrics (name and label names)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.register.messages import Result, Sale
from devtools.stack import WAIT_S
from devtools.webstack import web_stack

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "packaging" / "prometheus" / "edc-agent.rules.yml"
RULE_TESTS = ROOT / "packaging" / "prometheus" / "edc-agent.rules.test.yml"
DASHBOARD = ROOT / "packaging" / "grafana" / "edc-agent.json"
# Labels Prometheus adds at scrape time, and series that are not the agent's own.
SCRAPE_LABELS = {"job", "instance"}
NOT_FROM_AGENT = {"up"}
# Produced by the day's reconciliation sweep (issue 13 item 3), another part of the agent.
FROM_THE_SWEEP = {"edc_reconciliation_disagreements"}
_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\}$")
_METRIC = re.compile(r"\bedc_[a-z_]+\b")


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool missing under CI (.ci/run installs Debian's prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return tool


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_the_rules() -> None:
    done = subprocess.run([_promtool(), "test", "rules", str(RULE_TESTS)],
                          capture_output=True, text=True, check=False, cwd=RULES.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_has_a_test_that_fires_it() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)$", RULES.read_text(), re.M))
    # An `alertname:` followed by expected alerts (not `exp_alerts: []`).
    fired = set(re.findall(r"alertname: (\w+)\n\s*exp_alerts:\n", RULE_TESTS.read_text()))
    assert len(alerts) == 10 and alerts == fired


async def test_series_are_shaped_like_the_real_metrics(tmp_path: Path) -> None:
    # A real agent that made a sale: its /metrics has every family, histograms filled.
    async with web_stack(tmp_path) as s:
        result = (await s.register.client.request(
            Sale(id="r-metrics", txn="METRICS00001", amount="1000"), WAIT_S)).final
        assert isinstance(result, Result) and result.status == "success"
        text = await (await s.client.get("/metrics")).text()
    real: dict[str, set[frozenset[str]]] = {}
    declared: set[str] = set()  # a family with no sample yet (no refusal so far) still counts
    for family in text_string_to_metric_families(text):
        declared |= {family.name, f"{family.name}_total"} if family.type == "counter" \
            else {family.name}
        for sample in family.samples:
            real.setdefault(sample.name, set()).add(frozenset(sample.labels))

    used = set(_METRIC.findall(RULES.read_text())) | set(
        _METRIC.findall(DASHBOARD.read_text()))
    used = {name for name in used if not name.endswith("_")}
    missing = {n for n in used - FROM_THE_SWEEP
               if n not in real and n not in declared and f"{n}_bucket" not in real}
    assert not missing, f"rules or dashboard use metrics the agent does not export: {missing}"

    series = re.findall(r"- series: '(.+)'$", RULE_TESTS.read_text(), re.M)
    assert len(series) > 10
    for text in series:
        match = _SERIES.match(text)
        assert match, text
        name = match.group(1)
        labels = frozenset(
            part.split("=", 1)[0] for part in match.group(2).split(",") if part
        ) - SCRAPE_LABELS
        if name in NOT_FROM_AGENT or name in FROM_THE_SWEEP:
            continue
        assert name in real, f"{name} is not on the agent's /metrics"
        assert labels in real[name], \
            f"{name}{{{sorted(labels)}}}: the agent exports {sorted(map(sorted, real[name]))}"
