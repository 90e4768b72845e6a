"""Server throughput, latency, memory and a no-5xx soak, on 127.0.0.1 only.

Starts ``fakescope serve`` in a subprocess on a free loopback port with a fresh database, then:

1. for 1, 8 and 32 concurrent clients and three kinds of request (``health``; ``scan-known``:
   one image the database already holds; ``scan-new``: an image never seen, so a real decode
   and score), requests per second and p50/p95/p99 latency, each level bounded by
   ``--requests`` and ``--max-seconds``;
2. the server's resident memory before and after ``--memory-requests`` (2,000) new scans;
3. ``--soak-clients`` (32) clients for ``--soak-seconds`` (60) mixing all three, counting 5xx.

Every loop is bounded in count and time, and only 127.0.0.1 is ever contacted. New images are
one small PNG with a unique text chunk each, so every request has its own SHA-256 while the
client spends no time encoding. ``--quick`` shortens everything for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def base_png(size: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def with_nonce(png: bytes, nonce: int) -> bytes:
    """The same image with a tEXt chunk before IEND: new bytes, new SHA-256, same pixels."""
    payload = b"nonce\x00" + str(nonce).encode()
    chunk = b"tEXt" + payload
    text = struct.pack(">I", len(payload)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return png[:-12] + text + png[-12:]


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: int = 0  # connection errors and timeouts

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


class Load:
    def __init__(self, client: httpx.AsyncClient, png: bytes, nonce_start: int) -> None:
        self.client = client
        self.png = png
        self.nonce = nonce_start

    async def one(self, kind: str, tally: Tally) -> None:
        started = time.perf_counter()
        try:
            if kind == "health":
                response = await self.client.get("/v1/health")
            else:
                if kind == "scan-new":
                    self.nonce += 1
                    data = with_nonce(self.png, self.nonce)
                else:
                    data = self.png
                files = {"files": ("bench.png", data, "image/png")}
                response = await self.client.post("/v1/scan", files=files)
            tally.statuses[response.status_code] += 1
        except httpx.HTTPError:
            tally.failures += 1
            return
        tally.latencies.append(time.perf_counter() - started)

    async def run(
        self, kinds: list[str], clients: int, max_requests: int, max_seconds: float
    ) -> tuple[Tally, float]:
        tally = Tally()
        deadline = time.perf_counter() + max_seconds
        issued = 0

        async def worker() -> None:
            nonlocal issued
            while issued < max_requests and time.perf_counter() < deadline:
                kind = kinds[issued % len(kinds)]
                issued += 1
                await self.one(kind, tally)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return tally, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1e3 if values else float("nan")


def report(name: str, clients: int, tally: Tally, elapsed: float) -> None:
    done = len(tally.latencies)
    other = {s: n for s, n in tally.statuses.items() if not 200 <= s < 300}
    print(
        f"{name:<11}{clients:>8}{done:>9}{done / elapsed:>9.1f}"
        f"{percentile(tally.latencies, 50):>9.1f}{percentile(tally.latencies, 95):>9.1f}"
        f"{percentile(tally.latencies, 99):>9.1f}   5xx={tally.server_errors} "
        f"other={other or '-'} failed={tally.failures}",
        flush=True,
    )


async def benchmark(args: argparse.Namespace, url: str, server_pid: int) -> int:
    png = base_png(args.image_size)
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    timeout = httpx.Timeout(120.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        load = Load(client, png, nonce_start=0)
        await load.run(["scan-known", "health"], 1, 4, 30)  # warm-up: model, caches, pool
        print(f"load average before: {os.getloadavg()}")
        print(
            f"{'request':<11}{'clients':>8}{'done':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
            f"{'p99 ms':>9}"
        )
        for kind in ("health", "scan-known", "scan-new"):
            for clients in (1, 8, 32):
                tally, elapsed = await load.run([kind], clients, args.requests, args.max_seconds)
                report(kind, clients, tally, elapsed)

        before = rss_mib(server_pid)
        tally, elapsed = await load.run(
            ["scan-new"], 8, args.memory_requests, args.memory_max_seconds
        )
        after = rss_mib(server_pid)
        print(
            f"memory: server RSS {before:.1f} MiB before, {after:.1f} MiB after "
            f"{len(tally.latencies)} new scans ({elapsed:.0f} s, 5xx={tally.server_errors})"
        )

        tally, elapsed = await load.run(
            ["scan-new", "health", "scan-known"],
            args.soak_clients,
            10**9,
            args.soak_seconds,
        )
        report("soak-mix", args.soak_clients, tally, elapsed)
        print(
            f"soak: {args.soak_clients} clients for {elapsed:.0f} s, "
            f"{tally.server_errors} responses 5xx, {tally.failures} failed connections"
        )
        print(f"load average after: {os.getloadavg()}")
        return 1 if tally.server_errors or tally.failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per level, at most")
    parser.add_argument("--max-seconds", type=float, default=15.0, help="per level, at most")
    parser.add_argument("--memory-requests", type=int, default=2000)
    parser.add_argument("--memory-max-seconds", type=float, default=240.0)
    parser.add_argument("--soak-clients", type=int, default=32)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="the server's scanning threads")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.max_seconds = 40, 5.0
        args.memory_requests, args.soak_seconds = 200, 10.0

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fakescope-bench-") as folder:
        command = [
            sys.executable, "-m", "fakescope", "serve", "--host", HOST, "--port", str(port),
            "--db", str(Path(folder) / "cases.sqlite"), "--workdir", str(Path(folder) / "work"),
            "--workers", str(args.workers),
        ]  # fmt: skip
        server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://{HOST}:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    print(server.stderr.read() if server.stderr else "", file=sys.stderr)
                    raise SystemExit("the server did not start")
                time.sleep(0.1)
            print(
                f"server pid {server.pid} on {url}, {args.workers} scanning threads, "
                f"{args.image_size}px PNG uploads, {os.cpu_count()} CPUs"
            )
            return asyncio.run(benchmark(args, url, server.pid))
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    raise SystemExit(main())
