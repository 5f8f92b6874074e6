"""The SDK's loggers, fetched from :mod:`logging` when a message is first written.

The edge path logs only on rare events (a callback that raised, a model without an integrity
hash, a device that restarted its sample counter), yet ``import logging`` at module level costs
every wearable process ~0.55 MB of Python objects (logging with ``threading``, ``traceback`` and
``string``, which it imports): ~0.7 MB of resident memory against the 64 MB budget (issue 17).
The logger names, levels and handlers are exactly those of ``logging.getLogger(name)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, importing :mod:`logging` only now (call it where a
    message is written, never at module level)."""
    import logging

    return logging.getLogger(name)


__all__ = ["get_logger"]
