"""A Monitor in its own process on the UDP port given as argv[1]: prints its addresses,
then one JSON line per event."""

import json
import signal
import sys

import heartbeater

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with heartbeater.Monitor(f"udp://127.0.0.1:{sys.argv[1]}") as m:
    print(json.dumps({"listen": m.local_addrs}), flush=True)
    for ev in m.events():
        print(json.dumps(ev.to_dict()), flush=True)
