"""A Python client in its own process: beats until SIGTERM (graceful: the monitor sees
`left`) or SIGKILL (the monitor sees `dead`). Prints "started" once beating."""

import signal
import sys
import threading

import heartbeater

endpoint, service, instance_id, interval, ttl = sys.argv[1:6]
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())

with heartbeater.Client(endpoint, service=service, instance_id=instance_id, interval=float(interval), ttl=float(ttl)):
    print("started", flush=True)
    stop.wait()
