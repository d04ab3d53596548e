"""Watch peers beat to this process and print their transitions.

    python examples/monitor.py udp://127.0.0.1:7946
"""

from __future__ import annotations

import sys

import heartbeater


def main(listen: str) -> None:
    with heartbeater.Monitor(listen) as monitor:
        print("listening on", ", ".join(monitor.local_addrs), flush=True)
        try:
            for event in monitor.events():
                print(event, flush=True)
                if event.to_state == "dead":
                    peers = [p for p in monitor.peers() if p.state == "alive"]
                    print(f"  {len(peers)} peers still alive", flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "udp://127.0.0.1:7946")
