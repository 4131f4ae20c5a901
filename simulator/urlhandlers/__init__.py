"""pyserial URL handlers contributed by the simulator (``protocol_<scheme>.py`` modules).

The ``uxo.url_handlers`` entry point names this package; `acquisition.drivers.transport`
appends it to ``serial.protocol_handler_packages`` so ``serial.serial_for_url("sim://...")``
finds `simulator.urlhandlers.protocol_sim`.
"""
