"""asyncio: consume a monitor's events without blocking the loop, and expose the metrics to
prometheus_client.

    python examples/async_monitor.py udp://127.0.0.1:7946
"""

from __future__ import annotations

import asyncio
import sys
from typing import Dict

from prometheus_client import REGISTRY, generate_latest

import heartbeater
import heartbeater.prometheus


async def watch(listen: str, seconds: float) -> Dict[str, str]:
    last_state: Dict[str, str] = {}
    with heartbeater.Monitor(listen) as monitor:
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, monitor.stop)  # aevents() ends when the monitor stops
        async for event in monitor.aevents():
            last_state[f"{event.service}/{event.peer}"] = event.to_state
            print(event, flush=True)
    return last_state


def main() -> None:
    heartbeater.prometheus.register(REGISTRY)
    listen = sys.argv[1] if len(sys.argv) > 1 else "udp://127.0.0.1:7946"
    states = asyncio.run(watch(listen, seconds=30.0))
    print(states)
    print(generate_latest(REGISTRY).decode()[:400])


if __name__ == "__main__":
    main()
