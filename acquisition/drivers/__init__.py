"""Instrument drivers: transport by URL, pure framers and parsers, one module per protocol.

Use `acquisition.drivers.registry.create(name, url)` to get a driver by name.
"""

from acquisition.drivers.base import Driver, LineDriver, ParsedLines
from acquisition.drivers.transport import PortError

__all__ = ["Driver", "LineDriver", "ParsedLines", "PortError"]
