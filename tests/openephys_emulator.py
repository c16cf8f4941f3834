"""An emulator of the Open Ephys GUI's ZMQ Interface plugin publisher, for tests."""

from __future__ import annotations

import json
import threading

import numpy as np
import zmq


class OpenEphysEmulator:
    """Binds PUB on ``port`` and REP on ``port + 1`` like the plugin, and publishes blocks of
    ``[n_samples, n_channels]`` float32 one channel per message."""

    def __init__(self, port: int, stream: str = "ProbeA-AP", sample_rate: float = 30000.0):
        ctx = zmq.Context.instance()
        self.pub = ctx.socket(zmq.PUB)
        self.pub.setsockopt(zmq.LINGER, 1000)
        self.pub.setsockopt(zmq.SNDHWM, 1_000_000)
        self.pub.bind(f"tcp://127.0.0.1:{port}")
        self.rep = ctx.socket(zmq.REP)
        self.rep.bind(f"tcp://127.0.0.1:{port + 1}")
        self.stream, self.rate = stream, sample_rate
        self.message_num = 0
        self.heartbeats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._answer, daemon=True)
        self._thread.start()

    def _answer(self) -> None:
        while not self._stop.is_set():
            if self.rep.poll(50):
                msg = json.loads(self.rep.recv())
                if msg.get("type") == "heartbeat":
                    self.heartbeats += 1
                self.rep.send(b"heartbeat received")

    def header(self, channel: int, n: int, sample_num: int) -> bytes:
        self.message_num += 1
        return json.dumps(
            {
                "message_num": self.message_num,
                "type": "data",
                "content": {
                    "stream": self.stream,
                    "channel_num": channel,
                    "num_samples": n,
                    "sample_num": sample_num,
                    "sample_rate": self.rate,
                },
                "data_size": 4 * n,
                "timestamp": 0,
            },
            indent=2,
        ).encode()

    def send_block(self, block: np.ndarray, sample_num: int, skip_channels=(), bad_size_channels=()) -> None:
        for ch in range(block.shape[1]):
            if ch in skip_channels:
                continue
            payload = block[:, ch].astype("<f4").tobytes()
            if ch in bad_size_channels:
                payload = payload[:-4]
            self.pub.send_multipart([b"DATA\x00", self.header(ch, block.shape[0], sample_num), payload])

    def send_raw(self, frames: list[bytes]) -> None:
        self.pub.send_multipart(frames)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.pub.close()
        self.rep.close()
