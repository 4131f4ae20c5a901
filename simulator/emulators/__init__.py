"""Device emulators: simulated instruments that speak their real byte protocol on a pty."""
