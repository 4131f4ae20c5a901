"""Borehole mode: hole plans, probe logs, per-hole detection and multi-hole 3-D location.

Below 5 m the national procedure drills holes in a quincunx pattern 2 m apart,
one 5 m layer at a time, and logs a probe in each. This package turns those
logs into located targets by fitting a dipole to the logs of neighbouring
holes together, and states which part of a layer the holes have searched.

Modules: `plan` (hole layouts), `logs` (reading and conditioning probe logs),
`forward` (dipole field at probe sensors), `detect` (per-hole anomalies and
single-hole distance), `locate` (joint multi-hole dipole fits), `batch`
(whole-layer processing), `coverage` (sign-off statement), `pipeline`
(streaming wrapper), `report` (target-list and plan files).

Pure numpy/scipy: no zmq, h5py, serial or simulator imports here.
"""
