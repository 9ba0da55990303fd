"""The tap's messages, read on a thread of their own so that the main loop never waits blind.

The SDK reads its input on the main thread, line by line: while the tap is silent nothing else
happens there, so a STATE waiting for records still buffered waits as long as the tap does, and
a termination signal is noticed only when the next line comes. Here a reader thread reads
whatever input is available (64 KiB at most at a time, a few chunks ahead: memory stays flat)
and hands whole lines to the main thread, which takes them with a timeout: every `tick`
seconds without input it runs `on_idle` (the checkpoint clock), and it stops reading as soon
as `stopping()` says so (a signal came).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

CHUNK = 64 * 1024
CHUNKS_AHEAD = 16
_END = object()


class Intake:
    def __init__(
        self,
        source: IO[str] | Any,
        tick: float,
        on_idle: Callable[[], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._source = source
        self._tick = tick
        self._on_idle = on_idle
        self._stopping = stopping
        self._chunks: queue.Queue[Any] = queue.Queue(maxsize=CHUNKS_AHEAD)
        self._reader = threading.Thread(target=self._read, name="input", daemon=True)
        self._started = False

    def __iter__(self) -> Iterator[str]:
        if not self._started:
            self._started = True
            self._reader.start()
        while not self._stopping():
            try:
                chunk = self._chunks.get(timeout=self._tick)
            except queue.Empty:
                self._on_idle()
                continue
            if chunk is _END:
                return
            if isinstance(chunk, BaseException):
                raise chunk
            for line in chunk:
                if self._stopping():
                    return
                yield line

    # The reader thread -----------------------------------------------------------------------
    def _read(self) -> None:
        try:
            raw = getattr(self._source, "buffer", None)
            if raw is not None and hasattr(raw, "read1"):
                self._read_bytes(raw)
            else:  # a text stream without bytes underneath (the SDK's test runner's StringIO)
                for line in self._source:
                    self._chunks.put([line])
        except BaseException as exc:  # raised on the main thread, where the SDK reports it
            self._chunks.put(exc)
            return
        self._chunks.put(_END)

    def _read_bytes(self, raw: Any) -> None:
        partial: list[bytes] = []  # a line not ended yet (a long one spans many chunks)
        while True:
            chunk = raw.read1(CHUNK)  # what is there (at least a byte), without waiting for more
            if not chunk:
                break
            end = chunk.rfind(b"\n") + 1  # a newline never falls inside a UTF-8 character
            if not end:
                partial.append(chunk)
                continue
            lines = b"".join([*partial, chunk[:end]]).decode("utf-8").split("\n")[:-1]
            partial = [chunk[end:]] if end < len(chunk) else []
            self._chunks.put(lines)
        if partial:
            self._chunks.put([b"".join(partial).decode("utf-8")])
