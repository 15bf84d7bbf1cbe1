"""A session's events, counted: the metrics observe the conversation, they are not part of it.

Subscribe one `MetricsObserver` per session (`session.subscribe(MetricsObserver(metrics))`):
  TurnCompleted   voxloop_turns_total; its record's v2v and stage times into the histograms (the
                  stages a turn has: an interrupted or failed turn may lack some); its fillers
  Interrupted     voxloop_interruptions_total
  ErrorOccurred   voxloop_provider_errors_total{stage, provider, category} ("unknown" for a field
                  the error does not name, e.g. a stage timeout's provider)
  ProviderRetry   voxloop_retries_total
A fallback to the next provider of a chain follows an ErrorOccurred of the failed one, so it is
already counted there.
"""

from __future__ import annotations

from typing import Any

from voxloop.agent import events as ev
from voxloop.metrics.registry import STAGES, Metrics


class MetricsObserver:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def __call__(self, event: ev.Event) -> None:
        m = self.metrics
        if isinstance(event, ev.TurnCompleted):
            self._turn(event.record)
        elif isinstance(event, ev.Interrupted):
            m.interruptions.inc()
        elif isinstance(event, ev.ErrorOccurred):
            labels = (event.stage, event.provider, event.category)
            m.provider_errors.labels(*(x or "unknown" for x in labels)).inc()
        elif isinstance(event, ev.ProviderRetry):
            m.retries.inc()

    def _turn(self, record: dict[str, Any]) -> None:
        m = self.metrics
        m.turns.inc()
        if (v2v := record.get("v2v_ms")) is not None:
            m.v2v.observe(v2v / 1000)
        for stage in STAGES:
            if (ms := record.get(f"{stage}_ms")) is not None:
                m.stage.labels(stage).observe(ms / 1000)
        if fillers := record.get("fillers", 0):
            m.fillers.inc(fillers)
