"""Load, bounded: 16 concurrent /analyze requests from 4 gradio_client clients, all answered correctly;
5 rounds, and the server's memory does not keep growing across them. Prints the numbers (pytest -s).

The first round or two raise RSS (worker threads, allocator pools filling up: warm-up); after that it must
stay flat. Uncapped, glibc's per-thread malloc arenas made it climb for ~5 rounds (531, 558, 610, 643, 688,
688 MiB); apps.common.serve() caps them (limit_malloc_arenas), and `python -m benchmarks.memory` measures it.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from tests.served_app import shared_server  # noqa: E402

pytestmark = pytest.mark.slow  # 5 rounds of 16 concurrent requests to a served app

CLIENTS, PER_CLIENT, ROUNDS = 4, 4, 5
REQUEST_TIMEOUT = 600  # s: a request queued behind 15 others on a loaded 2-core CPU
GROWTH_LIMIT_MB = 200  # allowed RSS growth from the end of round 1 to the end of the last round
WARM_ROUNDS = 2        # rounds that may still grow (warm-up) ...
LATER_GROWTH_MB = 40   # ... then at most this much more over the later rounds (48 requests: < 1 MiB each)


def test_queue_is_bounded():
    import app

    assert app.QUEUE["max_size"] is not None and CLIENTS * PER_CLIENT <= app.QUEUE["max_size"] <= 256
    assert app.QUEUE["default_concurrency_limit"] >= 1


def test_concurrent_requests_memory_flat(astronaut, tmp_path):
    server = shared_server()
    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(photo)
    clients = [Client(server.url, verbose=False, download_files=str(tmp_path / f"c{i}")) for i in range(CLIENTS)]
    # warm-up: models loaded, caches filled, before memory is measured
    clients[0].submit(handle_file(str(photo)), 0, api_name="/analyze").result(timeout=REQUEST_TIMEOUT)
    rss = [server.rss()]
    print(f"\nserver RSS after warm-up: {rss[0] / 2 ** 20:.0f} MiB")

    def one(client: Client):
        t0 = time.monotonic()
        annotated, crop, table = client.submit(handle_file(str(photo)), 0, api_name="/analyze") \
            .result(timeout=REQUEST_TIMEOUT)
        return time.monotonic() - t0, table["data"]

    for r in range(ROUNDS):
        t0 = time.monotonic()
        with ThreadPoolExecutor(CLIENTS * PER_CLIENT) as pool:
            futures = [pool.submit(one, clients[i % CLIENTS]) for i in range(CLIENTS * PER_CLIENT)]
            results = [f.result() for f in futures]
        wall = time.monotonic() - t0
        for _, rows in results:
            assert len(rows) == 1 and rows[0][3] in ("learned", "hog", "cnn"), rows
        rss.append(server.rss())
        lat = sorted(t for t, _ in results)
        print(f"round {r + 1}: {len(results)} concurrent /analyze from {CLIENTS} clients, all correct in "
              f"{wall:.1f} s (latency min {lat[0]:.1f} s, max {lat[-1]:.1f} s), server RSS "
              f"{rss[-1] / 2 ** 20:.0f} MiB")
        assert server.alive()
    growth = (rss[-1] - rss[1]) / 2 ** 20
    later = (max(rss[WARM_ROUNDS + 1:]) - rss[WARM_ROUNDS]) / 2 ** 20
    numbers = ", ".join(f"{x / 2 ** 20:.0f}" for x in rss)
    print(f"RSS after warm-up and rounds 1-{ROUNDS}: {numbers} MiB; growth from round 1 to round {ROUNDS}: "
          f"{growth:+.0f} MiB (limit {GROWTH_LIMIT_MB}); after round {WARM_ROUNDS}: {later:+.0f} MiB at most "
          f"(limit {LATER_GROWTH_MB})")
    assert growth < GROWTH_LIMIT_MB, numbers
    assert later < LATER_GROWTH_MB, f"RSS keeps growing after warm-up: {numbers} MiB"
