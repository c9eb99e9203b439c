"""Open-loop HTTP load at a fixed rate (wrk2-style), for the webhook's p99 at half load.

``wrk`` is closed-loop: a slow answer delays the next request, which hides queueing
(coordinated omission). Here request *i* is due at ``start + i / rate`` whatever happened
before; its latency is measured from that due time, so waiting for a free connection counts.
HTTP/1.1 keep-alive over a fixed set of raw asyncio connections; the requests are small POSTs.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of ``values``; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> int:
    writer.write(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def open_loop(
    host: str,
    port: int,
    path: str,
    body_for: Callable[[int], bytes],
    rate: float,
    seconds: float,
    connections: int = 64,
) -> dict[str, Any]:
    """POST ``rate`` requests per second for ``seconds``; latency percentiles from due times."""
    loop = asyncio.get_running_loop()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nConnection: keep-alive\r\n"
    ).encode()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await asyncio.open_connection(host, port))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    total = int(rate * seconds)
    # built before the clock starts: the generator shares the cores with what it measures
    bodies = [body_for(i) for i in range(total)]

    async def one(i: int, due: float) -> None:
        reader, writer = await pool.get()
        try:
            status = await _request(reader, writer, head, bodies[i])
            statuses[status] += 1
            latencies.append((loop.time() - due) * 1000)
        except (OSError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError):
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
        finally:
            pool.put_nowait((reader, writer))

    tasks = []
    start = loop.time() + 0.1
    wall = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - wall
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()

    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "rate": rate,
        "seconds": seconds,
        "requests": total,
        "ok": ok,
        "errors": total - ok,
        "statuses": {str(k): v for k, v in statuses.items()},
        "achieved_rate": len(latencies) / elapsed if elapsed > 0 else float("nan"),
        "p50_ms": pct(latencies, 50),
        "p90_ms": pct(latencies, 90),
        "p99_ms": pct(latencies, 99),
        "max_ms": max(latencies, default=float("nan")),
    }


async def closed_loop(
    host: str,
    port: int,
    path: str,
    body_for: Callable[[int], bytes],
    seconds: float,
    connections: int,
) -> dict[str, Any]:
    """wrk's way where wrk is not installed: ``connections`` keep-alive connections, each
    POSTing the next body as soon as the previous answer arrived, for ``seconds``; 2xx/s."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nConnection: keep-alive\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    statuses: Counter[int] = Counter()
    counter = iter(range(1 << 62))

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while loop.time() < deadline:
                statuses[await _request(reader, writer, head, body_for(next(counter)))] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "seconds": elapsed,
        "ok": ok,
        "errors": sum(statuses.values()) - ok,
        "accepted_per_s": ok / elapsed,
    }
