"""A local web dashboard for a live stream: ``emotionkd-sdk stream … --dashboard``.

The page (static files in ``static/``, charts by the vendored uPlot) shows the GSR trace with
gaps and electrode-off stretches marked, the arousal and valence P(high) history, the current
values and quality, and the model card; it is fed by Server-Sent Events from a stdlib HTTP
server on loopback. :class:`DashboardHub` holds the bounded state, :class:`DashboardServer`
serves it.
"""

from __future__ import annotations

from emotionkd.sdk.dashboard.hub import DashboardHub
from emotionkd.sdk.dashboard.server import DEFAULT_BIND, DashboardServer, parse_bind

__all__ = ["DEFAULT_BIND", "DashboardHub", "DashboardServer", "parse_bind"]
