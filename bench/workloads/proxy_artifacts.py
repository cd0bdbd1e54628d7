"""One big artifact up and down through a tracking server's artifact proxy (``mlflow-artifacts``).

Starts ``mltrail server`` or ``mlflow server`` (the console script next to this interpreter) on a fresh SQLite
backend with a local ``--artifacts-destination`` in the working directory, then moves one ``--size-mb`` file
(default 1,024 MiB) through ``PUT``/``GET /api/2.0/mlflow-artifacts/artifacts/...``. The client is the same
for both servers: plain ``http.client`` streaming 1 MiB blocks (a ``Content-Length`` upload, a download read
into a reused buffer), so only the server differs. Reports MB/s (10^6 bytes) each way, the server's CPU
seconds per GiB each way (its whole process tree; steadier than MB/s on a busy machine) and the peak resident
memory of that tree, sampled every 50 ms from before the upload until after the download. Checks: the
stored file and the downloaded bytes match the source (size and CRC-32).
"""

from __future__ import annotations

import http.client
import os
import sys
import threading
import time
import zlib
from pathlib import Path

import _common as c
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: bench.servers starts servers
from bench.environment import Impl
from bench.servers import serve

MiB = 1024 * 1024
PATTERN_BYTES = 8 * MiB
ARTIFACT = "bench/run/artifacts/big.bin"
SAMPLE_EVERY_S = 0.05


def _arguments(parser) -> None:
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB")


class TreeRss:
    """Peak resident memory of a process and its descendants, sampled in a background thread."""

    def __init__(self, pid: int) -> None:
        self._root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        return [self._root, *self._root.children(recursive=True)]

    def now(self) -> int:
        total = 0
        for process in self._tree():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total

    def cpu_seconds(self) -> float:
        return c.tree_cpu_seconds(self._root.pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            time.sleep(SAMPLE_EVERY_S)

    def __enter__(self) -> TreeRss:
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _write_source(path: Path, size: int) -> int:
    """A file of ``size`` bytes repeating one random 8 MiB block; returns its CRC-32."""
    pattern = os.urandom(PATTERN_BYTES)
    crc = 0
    with path.open("wb") as f:
        left = size
        while left:
            block = pattern[: min(left, PATTERN_BYTES)]
            f.write(block)
            crc = zlib.crc32(block, crc)
            left -= len(block)
    return crc


def _crc_of(path: Path) -> int:
    crc = 0
    with path.open("rb") as f:
        while block := f.read(MiB):
            crc = zlib.crc32(block, crc)
    return crc


def _upload(port: int, source: Path, size: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.putrequest("PUT", f"/api/2.0/mlflow-artifacts/artifacts/{ARTIFACT}")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(size))
    conn.endheaders()
    with source.open("rb") as f:
        while block := f.read(MiB):
            conn.send(block)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    if response.status != 200:
        raise SystemExit(f"upload answered {response.status}: {body[:300]!r}")
    return elapsed


def _download(port: int) -> tuple[float, int, int]:
    """(seconds, bytes, CRC-32) of a streamed GET of the artifact."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    buffer = bytearray(MiB)
    view = memoryview(buffer)
    received = crc = 0
    started = time.perf_counter()
    conn.request("GET", f"/api/2.0/mlflow-artifacts/artifacts/{ARTIFACT}")
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"download answered {response.status}: {response.read()[:300]!r}")
    while n := response.readinto(buffer):
        crc = zlib.crc32(view[:n], crc)
        received += n
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, received, crc


def main() -> None:
    args = c.parse_args(_arguments)
    workdir = Path.cwd()
    size = args.size_mb * MiB
    source = workdir / "source.bin"
    source_crc = _write_source(source, size)
    with serve(Impl(args.impl, Path(sys.executable)), workdir, workers=1) as server:
        rss = TreeRss(server.pid)
        idle = rss.now()
        with rss:
            cpu_start = rss.cpu_seconds()
            upload_s = _upload(server.port, source, size)
            cpu_uploaded = rss.cpu_seconds()
            download_s, received, download_crc = _download(server.port)
            cpu_downloaded = rss.cpu_seconds()
    stored = workdir / "artifacts" / ARTIFACT
    problems = []
    if not stored.is_file() or stored.stat().st_size != size or _crc_of(stored) != source_crc:
        problems.append("stored file differs from the source")
    if received != size or download_crc != source_crc:
        problems.append(f"downloaded {received:,} bytes, CRC {'ok' if download_crc == source_crc else 'differs'}")
    c.emit(
        upload_mb_s=size / upload_s / 1e6,
        download_mb_s=size / download_s / 1e6,
        upload_server_cpu_s_per_gib=(cpu_uploaded - cpu_start) * 1024 / args.size_mb,
        download_server_cpu_s_per_gib=(cpu_downloaded - cpu_uploaded) * 1024 / args.size_mb,
        peak_rss_mb=rss.peak / MiB,
        idle_rss_mb=idle / MiB,
        verified=not problems,
        detail=f"{args.size_mb:,} MiB each way, bytes checked" if not problems else "; ".join(problems),
    )


if __name__ == "__main__":
    main()
