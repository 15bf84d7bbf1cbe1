"""The process's own copy of its most used lines, in front of the disk or Redis store.

A hit here needs no thread and no socket (tens of microseconds), so the fillers and other lines
said many times a minute stay instant however busy the store's threads or the network are.
Bounded in bytes (the float32 audio), least recently used out; a line bigger than a quarter of
the bound is left to the store. Each hit hands out a copy, so no consumer can change what is kept.
"""

from __future__ import annotations

from collections import OrderedDict

from voxloop.providers.tts.cache.entry import Entry


class MemoryFront:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return Entry(entry.audio.copy(), entry.sample_rate)

    def put(self, key: str, entry: Entry) -> None:
        size = entry.audio.nbytes
        if size > self.max_bytes // 4 or key in self._entries:
            return
        self._entries[key] = Entry(entry.audio.copy(), entry.sample_rate)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.audio.nbytes
