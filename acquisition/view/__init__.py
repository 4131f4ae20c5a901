"""The operator's live view: a web page fed by the bus (`uxo view`, `--view`).

`model` turns bus messages into bounded, decimated page state (pure, no I/O);
`server` subscribes to the bus and serves the page and its WebSocket;
`static/` holds every file the page loads (nothing comes from the network).
"""
