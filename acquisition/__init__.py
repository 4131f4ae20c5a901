"""uxo-acquisition: magnetic UXO detector acquisition, processing and events.

Importing the package is cheap: sub-modules load what they need.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("uxo-acquisition")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
