"""/metrics: Prometheus text from a registry of this agent's own (never the global one, so
several agents can run in one process, as in the tests).

Histograms are fed as things happen (every Paytm call, every journal commit); everything
else is read from the agent when Prometheus scrapes. Names are listed in docs/web.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent import __version__
from agent.journal import TxnState
from agent.paytm.outcome import CallRecord
from drivers.base import TransportState

if TYPE_CHECKING:
    from agent.web.view import AgentView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PAYTM_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
JOURNAL_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class AgentMetrics:
    def __init__(self, agent: AgentView, wall: Callable[[], float] = time.time) -> None:
        self._agent = agent
        self.registry = CollectorRegistry(auto_describe=False)
        self.paytm_latency = Histogram(
            "edc_paytm_call_duration_seconds",
            "Paytm API calls: time from the request to the answer or the failure",
            ["api", "outcome"], buckets=PAYTM_BUCKETS_S, registry=self.registry)
        self.journal_write = Histogram(
            "edc_journal_write_duration_seconds",
            "Journal commits (fsync included) that the agent waited for",
            buckets=JOURNAL_BUCKETS_S, registry=self.registry)
        self.registry.register(_AgentCollector(agent, wall))

    def on_call(self, record: CallRecord) -> None:
        self.paytm_latency.labels(api=record.api, outcome=record.outcome).observe(
            record.latency_s)

    def on_commit(self, waits: list[float]) -> None:
        # One observation per journaled step: the time it waited for its commit (a
        # group commit's steps share one fsync, and each waited for it).
        for wait in waits:
            self.journal_write.observe(wait)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _AgentCollector:
    """Everything read from the agent at scrape time."""

    def __init__(self, agent: AgentView, wall: Callable[[], float]) -> None:
        self._agent = agent
        self._wall = wall

    def collect(self) -> Iterable[Metric]:
        agent = self._agent
        info = GaugeMetricFamily("edc_info", "edc-agent version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        yield GaugeMetricFamily("edc_uptime_seconds", "Seconds since the agent started",
                                value=max(0.0, self._wall() - agent.started_at))

        journal = agent.journal
        sales = GaugeMetricFamily("edc_sales", "Sales in the journal by lane and status",
                                  labels=["lane", "status"])
        # A sale voided or refunded in full is not counted as a success any more.
        for (name, state), count in sorted(journal.sale_outcomes().items()):
            sales.add_metric([name, state], count)
        yield sales
        stats = journal.stats
        yield CounterMetricFamily("edc_journal_commits",
                                  "Journal commits on disk (each one fsync, shared by its steps)",
                                  value=stats.commits)
        yield CounterMetricFamily("edc_journal_steps", "Journal steps committed",
                                  value=stats.steps)
        yield CounterMetricFamily("edc_journal_commit_failures",
                                  "Journal commits that failed (disk full, read-only, I/O)",
                                  value=stats.failed_commits)
        yield GaugeMetricFamily("edc_journal_healthy", "1 while the journal can be written",
                                value=1 if journal.health.ok else 0)
        everything = journal.count_by_lane_state()
        yield GaugeMetricFamily(
            "edc_unknown_transactions",
            "Transactions whose result is unknown (a person should check them)",
            value=sum(n for (_, state), n in everything.items() if state == TxnState.UNKNOWN))
        undelivered = GaugeMetricFamily(
            "edc_undelivered_results", "Results the register has not acknowledged yet",
            labels=["lane"])
        per_lane: dict[str, int] = {lane.name: 0 for lane in agent.lanes}
        for outbox in journal.undelivered():
            per_lane[outbox.lane] = per_lane.get(outbox.lane, 0) + 1
        for name, count in sorted(per_lane.items()):
            undelivered.add_metric([name], count)
        yield undelivered
        yield GaugeMetricFamily("edc_journal_size_bytes", "Journal file size (with WAL)",
                                value=journal.size_bytes())
        sweep = journal.last_sweep()
        yield GaugeMetricFamily(
            "edc_reconciliation_disagreements",
            "Disagreements between the journal and Paytm found by the last reconciliation "
            "sweep (a person must act on each)",
            value=sweep.disagreements if sweep is not None else 0)
        if sweep is not None:
            yield GaugeMetricFamily("edc_reconciliation_last_sweep_timestamp_seconds",
                                    "When the last reconciliation sweep finished (epoch)",
                                    value=sweep.finished_at)

        engine = agent.engine
        busy = engine.busy_terminals() if engine is not None else {}
        in_flight = GaugeMetricFamily(
            "edc_in_flight", "Sales and voids holding their terminal", labels=["lane"])
        for lane in agent.lanes:
            in_flight.add_metric([lane.name], 1 if lane.config.tid in busy else 0)
        yield in_flight
        yield GaugeMetricFamily("edc_polling", "Transactions the agent is asking Paytm about",
                                value=engine.polling_count() if engine is not None else 0)
        refusals = CounterMetricFamily(
            "edc_refusals", "Requests refused without a call to Paytm, by error code",
            labels=["code"])
        for code, count in sorted((engine.refusals if engine is not None else {}).items()):
            refusals.add_metric([code], count)
        yield refusals

        health = agent.health
        paytm = GaugeMetricFamily("edc_paytm_state",
                                  "Paytm reachability from the last call (one-hot)",
                                  labels=["state"])
        for state in ("ok", "down", "unknown"):
            paytm.add_metric([state], 1 if health.state == state else 0)
        yield paytm
        skew = health.last.clock_skew_s if health.last is not None else None
        if skew is not None:
            yield GaugeMetricFamily("edc_paytm_clock_skew_seconds",
                                    "Paytm's clock minus ours at the last answer", value=skew)

        yield from _lane_metrics(agent)


def _lane_metrics(agent: AgentView) -> Iterable[Metric]:
    up = GaugeMetricFamily("edc_transport_up", "1 while the lane's pipe is up", labels=["lane"])
    reconnects = CounterMetricFamily("edc_transport_reconnects",
                                     "Times the lane's pipe was reconnected", labels=["lane"])
    link_down = GaugeMetricFamily(
        "edc_link_down", "1 while the register does not acknowledge (protocol S3)",
        labels=["lane"])
    counters: dict[str, CounterMetricFamily] = {}
    for lane in agent.lanes:
        status = lane.transport.status
        up.add_metric([lane.name], 1 if status.state is TransportState.UP else 0)
        reconnects.add_metric([lane.name], status.reconnects)
        link_down.add_metric([lane.name], 1 if lane.link.down else 0)
        for name, value in lane.link.counters.as_dict().items():
            family = counters.get(name)
            if family is None:
                family = counters[name] = CounterMetricFamily(
                    f"edc_link_{name}", f"Link layer: {name.replace('_', ' ')}",
                    labels=["lane"])
            family.add_metric([lane.name], value)
    yield up
    yield reconnects
    yield link_down
    yield from counters.values()
