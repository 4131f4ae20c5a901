"""`uxo keys generate DIR`: create the CURVE key directory the event bus uses.

The directory's layout and who needs which file are described in
acquisition.buskeys; docs/wire.md shows the field set-up.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _cmd_generate(args: argparse.Namespace) -> int:
    from acquisition import buskeys

    try:
        made = buskeys.generate(args.dir, client=args.client)
    except (buskeys.BusKeyError, OSError) as exc:
        print(f"uxo keys generate: {exc}", file=sys.stderr)
        return 2
    for p in made:
        print(f"wrote {p}")
    print(f"publisher: --bus-keys {args.dir} (uses server.key_secret and clients/); "
          f"clients: copy server.key and {args.client}.key_secret into their own "
          "key directory (as client.key_secret)")
    return 0


def register_keys(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``uxo keys generate DIR [--client NAME]``."""
    p = subparsers.add_parser("keys", help="CURVE keys for the event bus",
                              description="Manage the CURVE keys that encrypt the event bus "
                                          "and admit only known clients.")
    sub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    g = sub.add_parser("generate", help="create a key directory (server pair, a client pair)",
                       description="Create DIR with the publisher's key pair (unless present), "
                                   "a client key pair, and that client's public key in "
                                   "DIR/clients/ (the publisher's allow-list). Secret files "
                                   "are written with mode 0600.")
    g.add_argument("dir", help="key directory")
    g.add_argument("--client", default="client",
                   help="name of the client pair to add (default: client); run again with "
                        "another name to admit another client")
    g.set_defaults(func=_cmd_generate)
    return p
