"""A partitionable UDP and TCP relay for system tests: traffic passes until the test cuts
it, either by dropping everything (100 % loss, sockets stay open) or by killing the relay
(every socket closed at once, as when its process dies). It records when it last sent a
client's bytes on towards the monitor, read *before* the send: the monitor received them
no earlier than that.

`heartbeater relay` impairs statistically; this one is driven by the test, moment by
moment, and speaks TCP too."""

import select
import socket
import threading
import time


def now_us():
    return time.time_ns() // 1000


class Faultline:
    """Relays udp:// or tcp:// traffic from clients to one upstream monitor address."""

    def __init__(self, scheme, upstream):
        host, port = upstream.rsplit(":", 1)
        self.scheme = scheme
        self.upstream = (host, int(port))
        self.mode = "pass"  # pass | drop | dead
        self.last_up_us = None
        self.lock = threading.Lock()
        kind = socket.SOCK_DGRAM if scheme == "udp" else socket.SOCK_STREAM
        self.listener = socket.socket(socket.AF_INET, kind)
        self.listener.bind(("127.0.0.1", 0))
        if scheme == "tcp":
            self.listener.listen(16)
        self.addr = "%s:%d" % self.listener.getsockname()
        self.sockets = [self.listener]
        # A pipe wakes the pump threads when the relay is killed.
        self.wake_r, self.wake_w = socket.socketpair()
        self.threads = [threading.Thread(target=self._udp if scheme == "udp" else self._accept, daemon=True)]
        self.threads[0].start()

    @property
    def endpoint(self):
        return f"{self.scheme}://{self.addr}"

    def drop(self):
        """100 % loss from now on, both directions; sockets stay open."""
        with self.lock:
            if self.mode == "pass":
                self.mode = "drop"

    def kill(self):
        """Every socket closed at once, as when the relay's process dies."""
        with self.lock:
            if self.mode == "dead":
                return
            self.mode = "dead"
            sockets, self.sockets = self.sockets, []
        self.wake_w.send(b"x")
        for s in sockets:
            try:
                if s.type == socket.SOCK_STREAM and s is not self.listener:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.kill()
        for t in self.threads:
            t.join(2)
        self.wake_r.close()
        self.wake_w.close()

    def _forward(self, sock, data, dest=None, up=False):
        """Sends unless dropping or dead; stamps upward sends before they leave."""
        with self.lock:
            if self.mode != "pass":
                return
            if up:
                self.last_up_us = now_us()
        try:
            if dest is None:
                sock.sendall(data)
            else:
                sock.sendto(data, dest)
        except OSError:
            pass

    def _track(self, sock):
        with self.lock:
            if self.mode == "dead":
                sock.close()
                return False
            self.sockets.append(sock)
            return True

    def _udp(self):
        # One upstream socket per client address, so replies find their way back.
        by_client, by_socket = {}, {}
        while True:
            try:
                ready, _, _ = select.select([self.listener, self.wake_r, *by_socket], [], [])
            except (OSError, ValueError):
                return
            if self.wake_r in ready:
                return
            for s in ready:
                try:
                    data, src = s.recvfrom(65536)
                except OSError:
                    continue
                if s is self.listener:
                    up = by_client.get(src)
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.bind(("127.0.0.1", 0))
                        if not self._track(up):
                            return
                        by_client[src], by_socket[up] = up, src
                    self._forward(up, data, self.upstream, up=True)
                else:
                    self._forward(self.listener, data, by_socket[s])

    def _accept(self):
        while True:
            try:
                ready, _, _ = select.select([self.listener, self.wake_r], [], [])
                if self.wake_r in ready:
                    return
                client, _ = self.listener.accept()
            except (OSError, ValueError):
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=2)
            except OSError:
                client.close()
                continue
            if not (self._track(client) and self._track(upstream)):
                return
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, up), daemon=True)
                self.threads.append(t)
                t.start()

    def _pump(self, src, dst, up):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            self._forward(dst, data, up=up)
