"""Keep this process registered as alive until Ctrl-C or SIGTERM (then peers see `left`).

    python examples/beat.py udp://127.0.0.1:7946 api
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

import heartbeater


def main(endpoint: str, service: str) -> None:
    logging.basicConfig(level=logging.INFO)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    with heartbeater.Client(endpoint, service=service, ttl=6.0, labels={"lang": "python"}) as client:

        @client.on_event
        def report(event: heartbeater.Event) -> None:
            logging.info("own health: %r", event)

        try:
            while not stop.wait(timeout=5.0):
                logging.info("state=%s remaining=%.1fs", client.state, client.remaining())
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "udp://127.0.0.1:7946", sys.argv[2] if len(sys.argv) > 2 else "api")
