"""Simulator: physically correct detector data and device emulators.

* `simulator.physics`: point dipoles, elongated bodies, lateritic soil, readings;
* `simulator.scenario`: TOML scenario files (strictly validated);
* `simulator.walker` / `simulator.survey`: the walked lanes and the simulated survey
  with its ground truth;
* `simulator.pty` / `simulator.emulators`: instruments speaking their byte protocol
  over real pseudo-terminals, with injectable faults;
* `simulator.urlhandlers`: ``sim://`` pyserial URLs (in-process emulated bytes);
* `simulator.driver`: the ``sim`` driver (SampleBlocks straight from a scenario);
* `simulator.cli`: the ``uxo simulate`` command.

The acquisition package never imports this one: it plugs in through entry points.
"""
