"""Microphone and speaker through PortAudio (sounddevice)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import Any

import numpy as np

from voxloop.errors import VoxloopError
from voxloop.providers._imports import require
from voxloop.providers.base import Samples
from voxloop.transports.base import AudioSink, window


def _sounddevice() -> Any:
    try:
        sd = require("sounddevice", "audio-device")
    except OSError as e:  # the module is there but PortAudio is not
        raise VoxloopError("PortAudio is not installed", "install it: apt-get install libportaudio2") from e
    return sd


def check_devices() -> Any:
    """sounddevice, once it is sure there is an input and an output device; else a clear error."""
    sd = _sounddevice()
    try:
        sd.query_devices(kind="input")
        sd.query_devices(kind="output")
    except Exception as e:  # PortAudioError or ValueError when there is no such device
        raise VoxloopError(
            f"no audio device found ({e})",
            "run 'voxloop talk' on a machine with a microphone and speaker, or use "
            "'voxloop run --in FILE.wav --out DIR' to talk to the agent through WAV files",
        ) from e
    return sd


class SpeakerSink(AudioSink):
    """Plays through the default output device from a buffer the PortAudio thread drains."""

    def __init__(self, sample_rate: int = 24000) -> None:
        self.sample_rate = sample_rate
        self._sd = check_devices()
        self._lock = threading.Lock()
        self._queue: deque[Samples] = deque()
        self._played = 0
        self._queued = 0
        self._paused = False
        # (monotonic time the block was handed to the device, the block): the echo reference
        self._history: deque[tuple[float, Samples]] = deque(maxlen=int(2.0 * sample_rate / 480) + 1)
        self._loop = asyncio.get_running_loop()
        self._empty = asyncio.Event()
        self._empty.set()
        self._stream = self._sd.OutputStream(
            samplerate=sample_rate, channels=1, dtype="float32", blocksize=480, callback=self._callback
        )
        self._stream.start()

    def _callback(self, out: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        filled = 0
        with self._lock:
            while filled < frames and self._queue and not self._paused:
                head = self._queue[0]
                take = min(frames - filled, len(head))
                out[filled : filled + take, 0] = head[:take]
                filled += take
                if take == len(head):
                    self._queue.popleft()
                else:
                    self._queue[0] = head[take:]
            self._played += filled
            empty = not self._queue and not self._paused
        out[filled:, 0] = 0
        with self._lock:
            self._history.append((time.monotonic(), out[:, 0].copy()))
        if empty:
            self._loop.call_soon_threadsafe(self._empty.set)

    def play(self, audio: Samples) -> None:
        with self._lock:
            self._queue.append(audio.astype(np.float32))
            self._queued += len(audio)
        self._empty.clear()

    def stop(self) -> None:
        with self._lock:
            self._queue.clear()
            self._paused = False
        self._empty.set()

    def pause(self) -> None:
        with self._lock:  # the next callback (<= 20 ms) plays silence and keeps the queue
            self._paused = True
        self._empty.clear()

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def played_samples(self) -> int:
        return self._played

    def queued_samples(self) -> int:
        return self._queued

    def busy(self) -> bool:
        return not self._empty.is_set()

    def played_audio(self, t0: float, t1: float) -> Samples:
        # The event loop's clock is time.monotonic(), the clock the blocks were stamped with.
        with self._lock:
            blocks = list(self._history)
        return window(reversed(blocks), t0, t1, self.sample_rate)

    async def drained(self) -> None:
        await self._empty.wait()

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()


class Microphone:
    """Delivers 20 ms frames from the default input device to an asyncio queue."""

    def __init__(self, rate: int = 16000, frame_ms: int = 20) -> None:
        self.rate = rate
        self._sd = check_devices()
        self._loop = asyncio.get_running_loop()
        self.frames: asyncio.Queue[Samples] = asyncio.Queue(maxsize=500)
        self._stream = self._sd.InputStream(
            samplerate=rate,
            channels=1,
            dtype="float32",
            blocksize=rate * frame_ms // 1000,
            callback=self._callback,
        )
        self._stream.start()

    def _callback(self, data: np.ndarray, _frames: int, _time: Any, _status: Any) -> None:
        frame = data[:, 0].copy()
        self._loop.call_soon_threadsafe(self._put, frame)

    def _put(self, frame: Samples) -> None:
        if not self.frames.full():
            self.frames.put_nowait(frame)

    def close(self) -> None:
        self._stream.stop()
        self._stream.close()
