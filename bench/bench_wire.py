"""Wire benchmarks: codec cost and publish->receive throughput over tcp loopback.

Run: ``.venv/bin/pytest bench/bench_wire.py --benchmark-only``. Throughput
rounds use ``nodrop=True`` with a blocking send so every message arrives and
the rate is a real end-to-end rate, not a rate of silent drops.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from acquisition import messages as m
from acquisition.events import Target
from acquisition.publisher import Publisher
from acquisition.subscriber import Subscriber
from acquisition.types import SampleBlock

T0 = 1_772_366_401_234_000_000
BLOCK = SampleBlock("grad0", 12, 12000, T0, 1000.0, np.random.default_rng(0).normal(size=(1000, 1)),
                    host_mono_ns=1, host_wall_ns=T0)
TARGET = Target("grad0", 3, 4.52, 10.31, 1.2, (0.1, -0.2, 2.0), 0.93, 0.05, 0.06, 0.08, -35.5,
                (3, 4), (), ("edge",), "dipole_fit", T0, 1)


def test_encode_block_1000x1(benchmark):
    msg = m.block_message(BLOCK, "s1", T0)
    frames = benchmark(m.encode, msg)
    assert len(frames[2]) == 8000


def test_decode_block_1000x1(benchmark):
    frames = m.encode(m.block_message(BLOCK, "s1", T0))
    msg = benchmark(m.decode, frames)
    assert msg.arrays["data"].shape == (1000, 1)


def test_block_message_build_encode_decode_typed(benchmark):
    def run() -> SampleBlock:
        return m.block_from_message(m.decode(m.encode(m.block_message(BLOCK, "s1", T0))))

    assert benchmark(run) == BLOCK


def test_encode_target(benchmark):
    msg = m.target_message(TARGET, "s1", T0)
    frames = benchmark(m.encode, msg)
    assert len(frames) == 2


def test_decode_target(benchmark):
    frames = m.encode(m.target_message(TARGET, "s1", T0))
    msg = benchmark(lambda: m.target_from_message(m.decode(frames)))
    assert msg == TARGET


def _throughput(benchmark, n: int, send) -> None:
    with Publisher("tcp://127.0.0.1:*", "bench", nodrop=True, send_timeout_ms=-1) as pub, \
            Subscriber(pub.endpoint, ("block.", "target."), meta=False) as sub:
        while pub.subscriptions < 2:
            pub.poll(100)

        def one_round() -> None:
            got = 0

            def reader() -> None:
                nonlocal got
                while got < n and sub.recv(10.0) is not None:
                    got += 1

            th = threading.Thread(target=reader)
            th.start()
            for _ in range(n):
                send(pub)
            th.join()
            assert got == n

        benchmark.pedantic(one_round, rounds=5, iterations=1, warmup_rounds=1)
        assert sub.gaps == {} and sub.rejected == 0
    rate = n / benchmark.stats.stats.mean
    benchmark.extra_info["messages_per_s"] = round(rate)
    print(f"\n{benchmark.name}: {rate:,.0f} messages/s")


@pytest.mark.parametrize("n", [20000])
def test_throughput_targets_tcp(benchmark, n):
    _throughput(benchmark, n, lambda pub: pub.publish_event(TARGET))


@pytest.mark.parametrize("n", [5000])
def test_throughput_blocks_1000x1_tcp(benchmark, n):
    _throughput(benchmark, n, lambda pub: pub.publish_block(BLOCK))
