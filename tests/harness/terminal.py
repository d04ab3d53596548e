"""What a terminal would act on, for the tests that check the CLI's escaping
(hb-cli/src/escape.rs, docs/cli.md "Escaping").

`RawLines` reads a child's stdout as bytes and splits it at b"\\n" only, so a CR, a
U+2028 or a trailing control character stays visible to the test (text-mode pipes split
at CR and `strip()` drops U+2028). `unsafe_chars` is the CLI's rule: Unicode general
category Other or Separator, except the ASCII space."""

import subprocess
import threading
import time
import unicodedata

# Each of these must reach the terminal escaped; the test inputs are built from them.
NEWLINE_ESC_BIDI = "x\ny\x1b[2J\u202egnp.exe\r\u2028z\u200b\x9b"


def unsafe_chars(text):
    return [c for c in text if c != " " and unicodedata.category(c)[0] in "CZ"]


class RawLines:
    """A child process whose stdout lines (bytes split at b"\\n", decoded as UTF-8) are
    collected by a thread; stderr is kept as text."""

    def __init__(self, argv):
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        self.cond = threading.Condition()
        self.lines = []
        self.stderr = []
        self.readers = [threading.Thread(target=self._read, args=(self.popen.stdout, self.lines), daemon=True),
                        threading.Thread(target=self._read, args=(self.popen.stderr, self.stderr), daemon=True)]
        for r in self.readers:
            r.start()

    def _read(self, stream, sink):
        for raw in stream:
            with self.cond:
                sink.append(raw.rstrip(b"\n").decode("utf-8"))
                self.cond.notify_all()
        stream.close()

    def wait_for(self, predicate, timeout, what):
        """Waits until predicate(lines) is truthy and returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate(self.lines)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                         f"stdout {self.lines[-10:]}; stderr {self.stderr[-5:]}")
                self.cond.wait(min(left, 0.1))

    def wait_stderr(self, needle, timeout=10):
        return self.wait_for(lambda _: [l for l in self.stderr if needle in l], timeout, f"stderr {needle!r}")

    def stop(self, timeout=5):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for r in self.readers:
            r.join(2)
        return self.popen.returncode
