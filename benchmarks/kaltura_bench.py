"""Kaltura client benchmarks against the simulator on loopback. Prints figures only (no assertions on time).

(a) getTable pull: ``--rows`` rows of the simulator's per-moment report (one day of VIEWER_SESSIONS), every getTable
    answered after ``--latency-ms`` (the simulator's latency knob is a response time). The window holds more than the
    12,000 rows one query may page through, so the client splits it and fetches ``concurrency`` pages at a time.
    floor = ceil(rows / page size) x latency / concurrency: the time if every page of the ideal paging ran back to back
    on every connection. Target: best-of-N time / floor <= 1.25, for concurrency 4 and 8. Two references separate the
    client from the machine: "replay" resends the client's own requests with a bare http.client fetcher at the same
    concurrency (no splitting logic, no requests library, no row dicts), and "no-latency" is the client's pull with
    latency 0 (the CPU cost of client plus simulator). best/replay near 1 means the client adds nothing measurable.
(b) CSV stream: a ``--csv-mib`` MiB ``report.getCsvFromStringParams`` body (room report 6001 padded by the simulator)
    streamed through the client into a sha256 sink, in a fresh interpreter whose peak RSS (VmHWM in /proc/self/status)
    is read before and after the stream. Target: growth <= 64 MiB.

The simulator runs in its own process (multiprocessing, spawn) so its request handling does not compete with the
client for one GIL; on a two-core machine the two processes get a core each.

Run: ``.venv/bin/python benchmarks/kaltura_bench.py [--rows 100000] [--concurrency 4 8] [--repeats 3] [--csv-mib 1024]``
Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PARTNER_ID = 1234567
SECRET = "0123456789abcdef0123456789abcdef"  # noqa: S105 - the fake secret of docs/kaltura.md#signature
MONDAY = 1767571200  # 2026-01-05 00:00 UTC
DAY = 86400
ROOM_DATA = 6000
ROOM_ATTENDEES = 6001
TARGET_RATIO = 1.25
TARGET_GROWTH_MIB = 64


# ---- the simulator process -------------------------------------------------------------------------------------


def serve_simulator(conn: Connection, rows: int, latency_ms: int, csv_bytes: int) -> None:
    """Run the simulator until told to stop. Commands: ``"calls"`` answers the getTable requests since the last ask
    as (fromDate, toDate, pageIndex, pageSize); ``("latency", ms)`` sets the getTable latency."""
    from kauto_local.simulator import VIEWER_SESSIONS, KalturaSimulator

    with KalturaSimulator(seed=1, tls=False) as sim:
        sim.add_partner(PARTNER_ID, SECRET)
        sim.configure_report(VIEWER_SESSIONS, rows_per_day=rows)
        latency = sim.faults.latency("report/getTable", latency_ms)
        sim.configure_room_report(ROOM_ATTENDEES, body_bytes=csv_bytes)
        conn.send({"url": sim.url, "now": sim.clock.now()})
        while True:
            command = conn.recv()
            if command == "stop":
                break
            if command == "calls":
                calls = sim.calls_to("report", "getTable")
                sim.clear_calls()
                conn.send(
                    [
                        (
                            call.params["reportInputFilter"]["fromDate"],
                            call.params["reportInputFilter"]["toDate"],
                            call.params["pager"]["pageIndex"],
                            call.params["pager"]["pageSize"],
                        )
                        for call in calls
                    ]
                )
            else:
                sim.faults.remove(latency)
                latency = sim.faults.latency("report/getTable", command[1])
                conn.send("ok")


# ---- (a) getTable pull -----------------------------------------------------------------------------------------

Requests = list[tuple[str, str, str, str]]


@dataclass(frozen=True)
class Pull:
    seconds: float
    cpu_seconds: float
    rows: int
    requests: Requests


def make_client(url: str, now: int, **settings: Any) -> Any:
    from kauto.kaltura import ClientSettings, Clock, KalturaClient, PartnerCredentials

    credentials = PartnerCredentials(partner_id=PARTNER_ID, service_url=url, admin_secret=SECRET)
    # The simulator's clock stands still: the client's KS is built on it.
    return KalturaClient(credentials, ClientSettings(**settings), clock=Clock(now=lambda: now))


def pull_table(client: Any, concurrency: int, page_size: int, simulator_calls: Callable[[], Requests]) -> Pull:
    """The client's whole getTable pull, row by row."""
    from kauto.kaltura import ReportFilter
    from kauto_local.simulator import VIEWER_SESSIONS

    simulator_calls()  # forget earlier requests
    started, cpu = time.perf_counter(), time.process_time()
    table = client.reports.table(
        VIEWER_SESSIONS, ReportFilter(MONDAY, MONDAY + DAY), page_size=page_size, concurrency=concurrency
    )
    rows = sum(1 for _ in table)
    return Pull(time.perf_counter() - started, time.process_time() - cpu, rows, simulator_calls())


def replay(url: str, ks: str, requests: Requests, concurrency: int) -> tuple[float, int]:
    """The same requests sent by a bare fetcher (``concurrency`` threads on kept-alive ``http.client`` connections,
    JSON decoded and rows split, nothing else): what this machine and the simulator allow, without the client."""
    from kauto_local.simulator import VIEWER_SESSIONS

    host, port = url.removeprefix("http://").split(":")
    bodies = iter(
        [
            urllib.parse.urlencode(
                {
                    "format": 1,
                    "ks": ks,
                    "reportType": VIEWER_SESSIONS,
                    "reportInputFilter[objectType]": "KalturaEndUserReportInputFilter",
                    "reportInputFilter[fromDate]": start,
                    "reportInputFilter[toDate]": end,
                    "pager[pageIndex]": page,
                    "pager[pageSize]": size,
                    "responseOptions[delimiter]": "|",
                }
            )
            for start, end, page, size in requests
        ]
    )
    lock = threading.Lock()
    counted = [0]

    def fetch() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            while True:
                with lock:
                    body = next(bodies, None)
                if body is None:
                    return
                connection.request("POST", "/api_v3/service/report/action/getTable", body=body, headers=headers)
                data = json.loads(connection.getresponse().read())["data"]
                rows = [line.split("|") for line in data.split(";")[:-1]]
                with lock:
                    counted[0] += len(rows)
        finally:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=fetch) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, counted[0]


def bench_table(
    args: argparse.Namespace,
    url: str,
    now: int,
    simulator_calls: Callable[[], Requests],
    set_latency: Callable[[int], None],
) -> None:
    page_size = args.page_size
    pages = math.ceil(args.rows / page_size)
    print(f"(a) getTable pull: {args.rows:,} rows, page size {page_size}, latency {args.latency_ms} ms per page")
    print(f"    floor = {pages} pages (ideal paging) x latency / concurrency; best and median of {args.repeats} pulls")
    print("    replay: the client's own requests resent by a bare http.client fetcher at the same concurrency")
    print("    no-latency: the client's pull with latency 0 (what the CPU of the two processes costs)")
    print(
        f"    {'concurrency':>11} {'requests':>8} {'best s':>7} {'median s':>8} {'rows/s':>9} {'floor s':>7} "
        f"{'best/floor':>10} {'median/floor':>12} {'replay s':>8} {'best/replay':>11} {'no-latency s':>12} "
        f"{'client CPU s':>12}"
    )
    for concurrency in args.concurrency:
        client = make_client(url, now, report_concurrency=concurrency, pool_size=max(16, concurrency))
        ks = client.with_session(lambda ks: ks)

        def best_of(repeats: int, client: Any = client, concurrency: int = concurrency) -> tuple[Pull, float]:
            pull_table(client, concurrency, page_size, simulator_calls)  # warm-up: connections, KS, code paths
            pulls = [pull_table(client, concurrency, page_size, simulator_calls) for _ in range(repeats)]
            if any(pull.rows != args.rows for pull in pulls):
                raise SystemExit(f"expected {args.rows} rows, got {[pull.rows for pull in pulls]}")
            return min(pulls, key=lambda pull: pull.seconds), statistics.median(pull.seconds for pull in pulls)

        best, median = best_of(args.repeats)
        replays = [replay(url, ks, best.requests, concurrency) for _ in range(args.repeats)]
        if any(rows < args.rows for _, rows in replays):  # the whole window's probe page comes on top
            raise SystemExit(f"replay expected {args.rows} rows or more, got {[rows for _, rows in replays]}")
        replayed = min(seconds for seconds, _ in replays)
        set_latency(0)
        unloaded, _ = best_of(max(1, args.repeats // 2))
        set_latency(args.latency_ms)
        floor = pages * args.latency_ms / 1000 / concurrency
        verdict = "meets" if best.seconds / floor <= TARGET_RATIO else "MISSES"
        print(
            f"    {concurrency:>11} {len(best.requests):>8} {best.seconds:>7.3f} {median:>8.3f} "
            f"{args.rows / best.seconds:>9,.0f} {floor:>7.3f} {best.seconds / floor:>10.2f} {median / floor:>12.2f} "
            f"{replayed:>8.3f} {best.seconds / replayed:>11.2f} {unloaded.seconds:>12.3f} {best.cpu_seconds:>12.2f}"
            f"   {verdict} <= {TARGET_RATIO}"
        )


# ---- (b) CSV stream in a fresh interpreter ---------------------------------------------------------------------


def peak_rss_kib() -> int:
    """VmHWM (peak resident set) of this process in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


class HashingSink:
    """Hashes what it is given and keeps nothing."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)


def csv_child(url: str, now: int) -> None:
    """Stream the padded room report through the client and print one JSON line of figures."""
    client = make_client(url, now)
    params = {"from_date": str(MONDAY), "to_date": str(MONDAY + DAY)}
    # Warm up (imports, KS, connection) on the unpadded room report: only 6001 carries the large body.
    client.reports.csv(ROOM_DATA, params, HashingSink())
    before = peak_rss_kib()
    sink = HashingSink()
    started, cpu = time.perf_counter(), time.process_time()
    result = client.reports.csv(ROOM_ATTENDEES, params, sink)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    after = peak_rss_kib()
    figures = {
        "bytes": result.bytes_written,
        "lines": result.lines,
        "sha256_matches_sink": result.sha256 == sink.digest.hexdigest() and sink.size == result.bytes_written,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "hwm_before_kib": before,
        "hwm_after_kib": after,
    }
    print(json.dumps(figures))


def bench_csv(args: argparse.Namespace, url: str, now: int) -> None:
    print(f"(b) getCsvFromStringParams stream: {args.csv_mib} MiB body into a sha256 sink (fresh interpreter)")
    command = [sys.executable, str(Path(__file__).resolve()), "--csv-child", url, str(now)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, env=os.environ.copy())
    if done.returncode != 0:
        raise SystemExit(f"CSV child failed:\n{done.stderr}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    growth_mib = (figures["hwm_after_kib"] - figures["hwm_before_kib"]) / 1024
    mib = figures["bytes"] / 2**20
    verdict = "meets" if growth_mib <= TARGET_GROWTH_MIB else "MISSES"
    print(f"    streamed {figures['bytes']:,} bytes ({mib:,.0f} MiB), {figures['lines']:,} lines")
    print(f"    sha256 of the stream matches the sink: {figures['sha256_matches_sink']}")
    print(
        f"    {figures['seconds']:.1f} s wall ({mib / figures['seconds']:,.1f} MiB/s, bound by the simulator making "
        f"the CSV), client CPU {figures['cpu_seconds']:.1f} s"
    )
    print(
        f"    peak RSS {figures['hwm_before_kib'] / 1024:,.1f} MiB before, {figures['hwm_after_kib'] / 1024:,.1f} MiB "
        f"after: growth {growth_mib:,.1f} MiB   {verdict} <= {TARGET_GROWTH_MIB} MiB"
    )


# ---- main ------------------------------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--csv-child":
        csv_child(sys.argv[2], int(sys.argv[3]))
        return
    from kauto.kaltura import ClientSettings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--page-size", type=int, default=ClientSettings().report_page_size)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--csv-mib", type=int, default=1024)
    parser.add_argument("--skip-table", action="store_true")
    parser.add_argument("--skip-csv", action="store_true")
    args = parser.parse_args()

    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    simulator = multiprocessing.get_context("spawn").Process(
        target=serve_simulator, args=(theirs, args.rows, args.latency_ms, args.csv_mib * 2**20), daemon=True
    )
    simulator.start()
    try:
        ready = ours.recv()

        def simulator_calls() -> Requests:
            ours.send("calls")
            return list(ours.recv())

        def set_latency(ms: int) -> None:
            ours.send(("latency", ms))
            ours.recv()

        load = os.getloadavg()
        print(
            f"Kaltura client benchmarks (simulator in its own process; load average {load[0]:.2f} "
            f"on {os.cpu_count()} CPUs)"
        )
        if not args.skip_table:
            bench_table(args, ready["url"], ready["now"], simulator_calls, set_latency)
        if not args.skip_csv:
            bench_csv(args, ready["url"], ready["now"])
    finally:
        ours.send("stop")
        simulator.join(timeout=10)
        if simulator.is_alive():
            simulator.terminate()


if __name__ == "__main__":
    main()
