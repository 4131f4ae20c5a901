"""Suite-wide fixtures: fail any test that leaves a driver port or runner thread open."""

from __future__ import annotations

import threading

import pytest
from hypothesis import settings

from acquisition.drivers.base import Driver

# Wall-clock deadlines judge the machine, not the code: on 2 shared cores under
# pytest-xdist a first call that imports numpy/scipy/pyproj/ppigrf can take
# seconds. Property tests keep their example counts; only the deadline goes.
settings.register_profile("uxo", deadline=None)
settings.load_profile("uxo")


@pytest.fixture(autouse=True)
def _no_leaked_ports_or_threads():
    before = set(threading.enumerate())
    yield
    leaked = list(Driver.open_instances)
    for d in leaked:
        d.close()
    threads = [t for t in threading.enumerate()
               if t not in before and t.is_alive() and t.name.startswith("runner-")]
    for t in threads:
        t.join(5.0)
    still = [t.name for t in threads if t.is_alive()]
    assert not leaked, f"test left driver ports open: {[d.port_url for d in leaked]}"
    assert not still, f"test left runner threads running: {still}"
