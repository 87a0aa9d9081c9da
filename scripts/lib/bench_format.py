#!/usr/bin/env python3
"""Renders the JSON lines a benchmark printed as the markdown of its docs/benchmarks.md section.

usage: bench_format.py SECTION [ARGS...] < measurements.jsonl
"""
import json
import os
import sys


def rows():
    return [json.loads(l) for l in sys.stdin if l.startswith("{")]


def protocol(records):
    data = rows()
    n = int(records)
    print(f"{n:,} realistic customer records (about {data[0]['bytes'] / n:.0f} bytes per line) plus a state every 100, in memory, best of 3.")
    print("Reproduce: `scripts/bench protocol` (or `cargo bench -p sync-protocol --bench framing -- N`).")
    print()
    print("| operation | records/s | MB/s |")
    print("| --- | ---: | ---: |")
    for r in data:
        print(f"| {r['bench']} | {r['records_per_second']:,.0f} | {r['mb_per_second']:,.0f} |")
    full = next(r for r in data if r["bench"] == "parse full messages")
    peek = next(r for r in data if r["bench"].startswith("peek"))
    print()
    print(
        f"The fast path (peek) is {peek['records_per_second'] / full['records_per_second']:.1f}x faster than building "
        "each message: the engine forwards record lines without re-serialising their data."
    )


def dest_postgres(records):
    data = {r["bench"]: r for r in rows()}
    n = int(records)
    raw, raw2 = data["raw COPY, generated columns"], data["raw COPY, two connections"]
    first = data["dest-postgres write, first load"]
    update = data["dest-postgres write, updates of a full table"]
    mixed = data["dest-postgres write, half inserts and half updates"]
    same = data["dest-postgres write, a re-sync of unchanged records"]
    spaced = data["dest-postgres write, updates of a full table, fillfactor 75"]
    mb = first["input_bytes"] / 1e6
    print(
        f"`dest-postgres write` of NDJSON files of {n:,} realistic customer objects ({mb:,.0f} MB, a state every 1,000 records), "
        "against a raw text-format `COPY` of the same rows (pre-encoded in memory) into a table of the same shape (same generated columns, same primary key), "
        "measured in the same run on the same database, each pass after a `VACUUM` and a `CHECKPOINT` (so that none pays for the dead rows or dirty pages of the one before); best of three raw COPYs and of two runs of each pass. "
        "Default config: batch_size 10,000, one stream, which loads through two connections (`connections_per_stream`), its records spread over them by key. "
        "Ratios are given against a raw COPY on one connection and on two."
    )
    print("Reproduce: `scripts/bench dest-postgres` (or `cargo bench -p dest-postgres --bench load -- N`).")
    print()
    def wal(r):
        return f"{r['wal_bytes'] / 2**20:,.0f} MiB" if "wal_bytes" in r else ""
    print("| run | records/s | ratio to raw COPY | ratio to raw COPY on two connections | peak RSS | WAL written |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| raw COPY, one connection (the physical limit) | {raw['records_per_second']:,.0f} | 1.00 | | | {wal(raw)} |")
    print(f"| raw COPY, two connections | {raw2['records_per_second']:,.0f} | | 1.00 | | |")
    for label, r in [
        ("first load into an empty table", first),
        ("every row changed (new name, newer version), full table", update),
        ("the same, table made with `fillfactor: 75`", spaced),
        ("half new keys, half changed rows", mixed),
        ("a re-sync of unchanged records (left alone)", same),
    ]:
        rss = f"{r['peak_rss_bytes'] / 2**20:,.0f} MiB" if "peak_rss_bytes" in r else ""
        print(f"| {label} | {r['records_per_second']:,.0f} | {r['ratio_to_raw_copy']:.2f} | {r['ratio_to_raw_copy_two_connections']:.2f} | {rss} | {wal(r)} |")
    print()
    five_raw = data["raw COPY, five tables on five connections"]
    five = data["dest-postgres write, five streams"]
    one = data["dest-postgres write, five streams on one connection"]
    print("Five streams at once (the same records spread over five tables), one connection per stream, against five raw COPYs on five connections:")
    print()
    print("| run | records/s | ratio to raw COPY on five connections | peak RSS |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| raw COPY, five connections | {five_raw['records_per_second']:,.0f} | 1.00 | |")
    print(f"| dest-postgres write, five streams | {five['records_per_second']:,.0f} | {five['ratio_to_raw_copy']:.2f} | {five['peak_rss_bytes'] / 2**20:,.0f} MiB |")
    print(f"| the same on one connection (`max_connections: 1`) | {one['records_per_second']:,.0f} | {one['ratio_to_raw_copy']:.2f} | |")
    print()
    small = data["dest-postgres write, first load of a tenth"]
    print(f"Targets: first load, updates and the half-and-half pass at least 0.80 of raw COPY; five streams at least 0.80 of five raw COPYs; "
          f"peak RSS under 200 MB whatever the input size (measured {max(first['peak_rss_bytes'], update['peak_rss_bytes']) / 1e6:,.0f} MB at {n:,} records "
          f"and {small['peak_rss_bytes'] / 1e6:,.0f} MB at {small['records']:,}, {five['peak_rss_bytes'] / 1e6:,.0f} MB for five streams at once: "
          "batches being encoded and in flight are bounded by batch size and a 64 MiB total, not by input size, and each is sent in 1 MiB pieces; "
          "before commit `9ef6af3`, batches in flight were not counted and each connection kept a batch-sized write buffer, and five streams peaked at 185–205 MiB). "
          "Updates are the hard case: an update writes a new version of the row and its index entry, leaves the old one for vacuum, and after a "
          "checkpoint logs a full image of every page it touches (twice the WAL of a COPY of the same rows), none of which a COPY into an empty table does; "
          "against a raw COPY that also uses two connections they stay well below 0.80. "
          "A batch is merged by an `UPDATE … FROM` the staging table, then an insert of the keys not stored. Before, at commit `1f54f30`, "
          "it was one `INSERT … ON CONFLICT DO UPDATE`, which probes the index for a conflict and locks every row it finds before testing "
          "whether to update it: on this machine this bench then gave 0.79 for updates and 0.83 for the half-and-half pass, and a re-sync "
          "of unchanged records wrote 312 MB of WAL, all of it locks (measured with `pg_current_wal_lsn()` around the write). "
          "WAL written is the whole cluster's, around each run. "
          "Without the `VACUUM` before it, a half-and-half pass right after an update pass took about 18% longer "
          "(5.6 and 6.0 s against 4.7 and 5.1 s, by hand): its probes prune the dead rows the update pass left, which autovacuum would otherwise have done.")
    plain = data["raw COPY, 7 typed columns written by the client"]
    generated = data["raw COPY, the same 7 typed columns generated"]
    print()
    print("Typed columns as generated columns or written by the loader (raw COPY of the same rows with 7 typed columns each way):")
    print()
    print("| typed columns | records/s |")
    print("| --- | ---: |")
    print(f"| generated from `_raw_data` by Postgres | {generated['records_per_second']:,.0f} |")
    print(f"| written by the client | {plain['records_per_second']:,.0f} |")
    print()
    ratio = generated["records_per_second"] / plain["records_per_second"]
    if ratio >= 1:
        cost = f"Postgres extracting the typed columns from `_raw_data` was {ratio:.2f}x the speed of the client sending them"
    else:
        cost = f"generating the typed columns in Postgres ran at {ratio:.2f} of the speed of the client sending them"
    print(f"In this run, {cost}. Generated columns are kept: the typed view can never disagree with `_raw_data`, "
          "a property added later is filled for existing rows, and the loader stays independent of the schema.")


def stripe_fake(seconds):
    data = rows()
    cores = os.cpu_count() or 0
    page_kb = data[0]["bytes_per_page"] / 1000
    print(
        f"`GET /v1/customers?limit=100` on loopback (about {page_kb:.0f} kB per page), keep-alive connections each "
        f"walking 20,000 customers with `starting_after`, {seconds} s per row after a warm-up. The clients run in the "
        f"same process and share the {cores} cores with the server, so these are lower bounds for the server alone."
    )
    print("Reproduce: `scripts/bench stripe-fake` (or `cargo bench -p stripe-fake --bench list_pages -- SECONDS CUSTOMERS`).")
    print()
    print("| client connections | pages/s | objects/s | MB/s |")
    print("| ---: | ---: | ---: | ---: |")
    for r in data:
        print(
            f"| {r['connections']} | {r['pages_per_second']:,.0f} | {r['objects_per_second']:,.0f} | {r['mb_per_second']:,.0f} |"
        )


def per_second_plot(per_second, limit):
    """Each second's 200s as a bar against the limit (50 characters)."""
    print("```")
    for second, n in enumerate(per_second):
        bar = "#" * round(n / limit * 50)
        print(f"{second:>4} s {n:>4} {bar}")
    print("```")


def source_stripe():
    data = rows()
    limited = [r for r in data if "limit" in r]
    free = [r for r in data if r["bench"] == "no latency, no limits"]
    print("`source-stripe read` against the simulator with Stripe-like latency (150-250 ms per request, random) and live-mode limits "
          "enforced by the simulator (100 requests/s per account, 25 per endpoint, answered with 429 above), with a live key, so the "
          "source applies the same limits on its side. Requests/s counts successful responses over the whole run, process start "
          "included. Then without latency or limits: records/s and peak RSS for two data-set sizes.")
    print("Reproduce: `scripts/bench source-stripe` (or `cargo bench -p source-stripe --bench backfill`).")
    print()
    print("| run | objects | seconds | requests/s | limit | ratio | 429s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in limited:
        print(f"| {r['bench']} | {r['objects']:,} | {r['seconds']:.1f} | {r['requests_per_second']:.1f} | {r['limit']:.0f} | {r['ratio_to_limit']:.2f} | {r['rate_limited']} |")
    print()
    for r in limited:
        per_second = r.get("ok_per_second") or []
        if len(per_second) < 10 or not r["bench"].startswith("five"):
            continue
        limit = r["limit"]
        # The last second is partial (the run ends inside it).
        whole = per_second[:-1]
        busy = sum(1 for n in whole if n >= 0.9 * limit)
        print(f"Each second of the {r['bench'].split(',')[0]} run ({r['objects']:,} objects), from the start of the source process: "
              f"responses answered 200 in that second, against the limit of {limit:.0f}. "
              f"{busy} of its {len(whole)} whole seconds at 0.90 of the limit or more; the first second {per_second[0]}, "
              f"the last whole second {whole[-1] if whole else 0}. "
              f"It made {r['requests']:,.0f} requests where {r['objects'] / 100:,.0f} full pages hold the objects (each range piece "
              f"ends with a partial page, and density probes come first): at the limit, those pages alone take "
              f"{r['objects'] / 100 / limit:.1f} s, {r['objects'] / 100 / limit / r['seconds']:.2f} of the run's {r['seconds']:.1f} s.")
        print()
        per_second_plot(per_second, limit)
        print()
    print("| no latency, no limits | records/s | peak RSS |")
    print("| --- | ---: | ---: |")
    for r in free:
        print(f"| {r['objects']:,} objects | {r['records_per_second']:,.0f} | {r['peak_rss_bytes'] / 2**20:.0f} MiB |")
    print()
    layout = [r for r in data if r["bench"] == "pretty vs compact"]
    if layout:
        r = layout[0]
        print(f"The simulator answering as api.stripe.com does (pretty-printed, two-space indent) against compact JSON, {r['objects']:,} "
              "customers, best of three alternating runs each; the source compacts every object to one line.")
        print()
        print("| simulator answers | records/s | ratio |")
        print("| --- | ---: | ---: |")
        print(f"| compact JSON | {r['compact_records_per_second']:,.0f} | 1.00 |")
        print(f"| pretty-printed JSON | {r['pretty_records_per_second']:,.0f} | {r['ratio']:.2f} |")
        print()
    print("Targets: one stream at least 0.90 of 25 requests/s, eight and five streams at least 0.90 of 100 requests/s over the whole run; peak RSS flat in the object count "
          "(it is bounded by the pages in flight, at most `max_concurrency`); pretty-printed answers at least 0.80 of compact ones.")


def connect():
    data = rows()
    print("A Connect platform's `source-stripe read` with `connected_accounts: \"all\"` against the simulator: the platform and "
          "N connected accounts of M customers each, Stripe-like latency (150-250 ms per request, random), live-mode limits "
          "enforced by the simulator (100 requests/s for the key, 25/s per endpoint of each account, 429 above) and the source's "
          "defaults for a live key (the same limits on its side). The floor is the requests the work needs at least (the account "
          "list's pages, then per account `GET /v1/account`, its customers' pages and one `/v1/events` page) at 100/s; the ratio "
          "is the floor over the wall time, process start to exit. Target: 0.8 or more.")
    print("Reproduce: `scripts/bench connect` (or `cargo bench -p source-stripe --bench connect -- ACCOUNTS CUSTOMERS`).")
    print()
    print("| accounts | customers each | records (expected) | seconds | requests (needed) | floor s | ratio to floor | 429s | peak RSS |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in data:
        print(f"| {r['accounts']:,} | {r['customers_per_account']} | {r['records']:,} ({r['expected_records']:,}) | {r['seconds']:.1f} | "
              f"{r['requests']:,} ({r['requests_needed']:,}) | {r['floor_seconds']:.1f} | **{r['ratio_to_floor']:.2f}** | "
              f"{r['rate_limited']} | {r['peak_rss_bytes'] / 1e6:.0f} MB |")


def engine():
    data = {r["bench"]: r for r in rows()}
    pipe, eng = data["shell pipe"], data["sync-engine"]
    print(f"The same sync of {pipe['records']:,} customers (simulator without latency or limits → source-stripe → dest-postgres, into an empty "
          "schema) through `sync-engine sync` and through a shell pipe `source-stripe read | dest-postgres write`, best of two alternating "
          "runs each. The engine's time includes its spec, discover and setup steps.")
    print("Reproduce: `scripts/bench engine` (or `cargo bench -p sync-engine --bench pipeline -- N`).")
    print()
    print("| run | records/s | ratio | engine peak RSS |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| shell pipe | {pipe['records_per_second']:,.0f} | 1.00 | |")
    print(f"| sync-engine | {eng['records_per_second']:,.0f} | {eng['ratio_to_pipe']:.2f} | {eng['engine_peak_rss_bytes'] / 2**20:.0f} MiB |")
    print()
    print("Targets: the engine at least 0.90 of the pipe; the engine's own peak RSS under 50 MB (records pass through it as bytes).")
    if "fixed_seconds" in eng:
        fixed = eng["fixed_seconds"] - pipe["fixed_seconds"]
        share = fixed / eng["seconds"]
        print()
        print("What the engine adds before and after the records, measured as the same two syncs of no records at all (best of three): "
              f"the pipe {pipe['fixed_seconds']:.2f} s, the engine {eng['fixed_seconds']:.2f} s (its own start, both connectors' `spec`, "
              f"`discover` and both `setup`s, which the pipe does not run). Those {fixed:.2f} s are {share:.0%} of the engine's run above. "
              f"Beyond them, moving the records, the engine is {eng['ratio_beyond_fixed_costs']:.2f} of the pipe.")
    if "engine_cpu_seconds" in eng:
        cpu = eng["engine_cpu_seconds"]
        print()
        print(f"The engine's own CPU in that run (user and system, its connectors not counted): {cpu:.2f} s, "
              f"{cpu / eng['records'] * 1e6:.1f} µs a record. The source, the destination and Postgres keep both cores busy "
              f"through the pipe, so what the engine spends is taken from them: its run is {eng['seconds'] - pipe['seconds']:.2f} s "
              f"longer than the pipe's, {(eng['seconds'] - pipe['seconds']) / cpu:.0%} of its CPU time. That CPU, not waiting, "
              "is what stands between the engine and the pipe (see issue 29: CPU per record).")
    if "five streams, parallel connections" in data:
        par, one = data["five streams, parallel connections"], data["five streams, one connection"]
        print()
        print(f"Five streams end to end ({par['records']:,} objects: customers, products, prices, charges, payment intents; the same simulator "
              "without latency or limits), the destination loading through parallel connections (the default: up to 4, two per stream) "
              "and through one (`max_connections: 1`), best of two each:")
        print()
        print("| destination connections | records/s | ratio |")
        print("| --- | ---: | ---: |")
        print(f"| one | {one['records_per_second']:,.0f} | 1.00 |")
        print(f"| parallel | {par['records_per_second']:,.0f} | {par['ratio_to_one_connection']:.2f} |")


def serve():
    data = {r["bench"]: r for r in rows()}
    one, many = data["sync through serve"], data["16 concurrent syncs"]
    print(f"The same sync of {one['records']:,} customers (simulator without latency or limits, into an empty schema) by `sync-engine sync` "
          "in-process and by `sync-engine sync --engine-url` through a `sync-engine serve` on this machine, best of two alternating runs each.")
    print("Reproduce: `scripts/bench serve` (or `cargo bench -p sync-engine --bench serve -- N`).")
    print()
    print("| run | records/s | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| in-process | {one['local_records_per_second']:,.0f} | 1.00 |")
    print(f"| through serve | {one['remote_records_per_second']:,.0f} | {one['ratio']:.2f} |")
    print()
    print(f"{many['runs']} `pipeline_sync` requests at once on one server, each syncing {many['records'] // many['runs']:,} customers into its own "
          f"schema ({many['records']:,} records in all), while `/health` is polled every 20 ms ({many['health_samples']} samples):")
    print()
    print("| total records/s | server peak RSS | `/health` p50 | `/health` p99 |")
    print("| ---: | ---: | ---: | ---: |")
    print(f"| {many['records_per_second']:,.0f} | {many['serve_peak_rss_bytes'] / 2**20:.0f} MiB | {many['health_p50_ms']:.1f} ms | {many['health_p99_ms']:.1f} ms |")
    print()
    print("Targets: through serve at least 0.95 of in-process; under 16 concurrent syncs the server's own peak RSS under 100 MB "
          "(connectors are separate processes) and `/health` p99 under 50 ms.")


def live(seconds):
    data = rows()
    hooks = next(r for r in data if r["bench"] == "webhooks")
    polling = next(r for r in data if r["bench"].startswith("polling"))
    rising = [r for r in data if r["bench"] == "webhooks, rising rate"]
    print(f"`sync-engine sync --live` of 2,000 customers while the simulator updates {hooks['rate']:.0f} of them per second "
          f"(`/_fake/load`, each update stamped with the millisecond it was made) for {float(seconds):.0f} s; a poller reads Postgres "
          "every 20 ms and notes when each update became visible. Webhooks only (the source's own endpoint, made by setup, "
          "`poll_interval_secs: 0`), then polling only (the default 2 s). Memory: the engine and both connectors together, the "
          "largest of five one-second samples at the start, from the middle and at the end of the run (the middle one is past "
          "the warm-up of bounded memories, such as the event ids remembered for two minutes); then each process's first and last sample.")
    print(f"Reproduce: `scripts/bench live` (or `cargo bench -p sync-engine --bench live -- SECONDS`; `BENCH_LIVE_SECONDS`).")
    print()
    print("| path | updates | not seen | p50 | p99 | max | RSS start → middle → end |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in (hooks, polling):
        name = "webhooks" if r is hooks else "polling every 2 s"
        print(f"| {name} | {r['updates']:,} | {r['missing']} | {r['p50_ms']} ms | {r['p99_ms']} ms | {r['max_ms']} ms | "
              f"{r['rss_first_bytes'] / 2**20:.1f} → {r['rss_half_bytes'] / 2**20:.1f} → {r['rss_last_bytes'] / 2**20:.1f} MiB |")
    print()
    print("Each process, first → last sample:")
    print()
    print("| path | " + " | ".join(hooks["rss_by_process_bytes"]) + " |")
    print("| --- |" + " ---: |" * len(hooks["rss_by_process_bytes"]))
    for r in (hooks, polling):
        name = "webhooks" if r is hooks else "polling every 2 s"
        cells = [f"{a / 2**20:.1f} → {b / 2**20:.1f} MiB" for a, b in r["rss_by_process_bytes"].values()]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if rising:
        print()
        print("Webhooks at rising rates, 10 s each, until p99 passes a second:")
        print()
        print("| updates/s | updates | not seen | p50 | p99 |")
        print("| ---: | ---: | ---: | ---: | ---: |")
        for r in [hooks] + rising:
            print(f"| {r['rate']:,.0f} | {r['updates']:,} | {r['missing']} | {r['p50_ms']} ms | {r['p99_ms']} ms |")
        sustained = [r["rate"] for r in [hooks] + rising if r["p99_ms"] < 1000 and r["missing"] == 0]
        print()
        print(f"Highest rate measured with p99 under a second: {max(sustained):,.0f} updates/s." if sustained
              else "No rate measured kept p99 under a second.")
    print()
    print("Targets: through webhooks p50 under 300 ms and p99 under 1 s; through polling p99 under the interval plus 1 s (3 s); "
          "memory flat over the run.")


def service():
    data = rows()
    ready = next(r for r in data if r["bench"] == "post_to_ready")
    hooks = next(r for r in data if r["bench"] == "webhook_to_row")
    busy = next(r for r in data if r["bench"] == "webhook_to_row_during_backfill")
    print(f"{ready['customers']:,} customers and 60 products in the simulator; a Temporal dev server, the release "
          "`sync-service worker` (engine in-process, 300 s steps) and `serve`, one Postgres. First `sync-engine sync` "
          "of the same streams into another schema, then `POST /pipelines` and polling `GET` (every 200 ms) until "
          f"`ready` (the create runs `check` first). Then {hooks['webhooks']} webhooks one at a time, each a change made "
          "without an event of its own, timed from the POST to the row showing it (polled every 200 ms).")
    print("Reproduce: `scripts/bench service` (`BENCH_SERVICE_CUSTOMERS`, default 20,000).")
    print()
    print("| measure | result | target |")
    print("| --- | ---: | --- |")
    print(f"| `sync-engine sync` | {ready['engine_seconds']:.2f} s | |")
    print(f"| `POST /pipelines` → `ready` | {ready['service_seconds']:.2f} s | |")
    print(f"| service overhead | {ready['overhead'] * 100:+.1f} % | at most +10 % |")
    print(f"| webhook → row, pipeline `ready`, p50 / p99 (max) | {hooks['p50_ms']} / {hooks['p99_ms']} ms ({hooks['max_ms']} ms) | p99 under 2 s |")
    print(f"| webhook → row, during a backfill step, p50 / p99 (max) | {busy['p50_ms']} / {busy['p99_ms']} ms ({busy['max_ms']} ms) | p99 under 2 s |")
    print()
    print("Each webhook rings the workflow, whose live lane applies the inbox in push mode through an activity on its own "
          f"task queue, also while a backfill step runs. The second row's pipeline backfills at 5 requests/s, so its one "
          f"step outlasts the webhooks ({busy['after_backfill']} of {busy['webhooks']} landed after the backfill ended).")


def scale():
    data = [r for r in rows() if r["bench"] == "scale"]
    first = data[0]
    print(f"{first['pipelines']} pipelines, each of its own connected account (so its own rate budget of 25 requests/s "
          f"and its own step lock), each syncing {first['customers']:,} customers and 60 products into its own schema; a Temporal dev "
          "server, release `sync-service serve` and 1, 2 or 3 release workers (default 8 steps at once each, 300 s steps), "
          "the simulator and Postgres on the same machine. Timed from the first `POST /pipelines` until all are `ready` "
          "(rows checked exact after). Worker memory is the largest `sync-service worker` process's peak RSS (the "
          "connectors are processes of their own).")
    print("Reproduce: `scripts/bench scale` (`BENCH_SCALE_CUSTOMERS`, default 5,000).")
    print()
    print("| workers | records | seconds | records/s in all | ratio to one worker | worker peak RSS | per pipeline it ran |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in data:
        ratio = r["records_per_second"] / first["records_per_second"]
        rss = r["worker_peak_rss_bytes"] / 2**20
        print(f"| {r['workers']} | {r['records']:,} | {r['seconds']:.1f} | {r['records_per_second']:,.0f} | {ratio:.2f} | "
              f"{rss:.0f} MiB | {rss / r['pipelines_per_worker']:.1f} MiB |")
    print()
    print("On this 2-core machine the workers, the connectors they start, the simulator, Postgres and Temporal share the "
          "same two cores: a ratio near 1 says the machine, not the number of workers, is the limit.")


def console():
    r = [r for r in rows() if r["bench"] == "console"][0]
    print(f"The web console with {r['pipelines']:,} pipelines in the control database (every status, each with a "
          "checkpoint, sums and three runs): release `sync-service serve` and Postgres on this machine; each page "
          f"fetched {r['samples']} times after one warm-up, timed at the client over loopback (an upper bound of the "
          "server's time: the query, the template and the transfer).")
    print("Reproduce: `scripts/bench console` (`BENCH_CONSOLE_PIPELINES`, default 1,000).")
    print()
    print("| page | median | p95 | max | size | target |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    names = {"list": "pipelines list `/`", "pipeline": "one pipeline", "explorer": "explorer `/explorer`",
             "explorer_table": "explorer table `invoices`"}
    for key, label in names.items():
        m = r[key]
        target = "< 200 ms" if key == "list" else ""
        print(f"| {label} | {m['median_ms']:.1f} ms | {m['p95_ms']:.1f} ms | {m['max_ms']:.1f} ms | "
              f"{m['bytes'] / 1024:,.0f} KiB | {target} |")


def poll():
    r = [r for r in rows() if r["bench"] == "poll"][0]
    print(f"One `ready` pipeline with nothing new (1,000 customers and 60 products synced), stepped {r['steps']} times "
          "in a row through `POST /pipelines/{id}/sync_batch`, which answers once the step ended: release "
          "`sync-service serve` and `worker`, a Temporal dev server, the simulator and Postgres on this machine, "
          "nothing else running. CPU from `/proc/<pid>/stat` (user + system, reaped children included): the "
          "worker with the connector processes it started, `serve`, every `postgres` process, the Temporal dev "
          "server, and the bench process (the simulator and the HTTP client).")
    print("Reproduce: `scripts/bench poll` (`BENCH_POLL_STEPS`, default 20).")
    print()
    print("| measure | a step |")
    print("| --- | ---: |")
    print(f"| wall time, median | {r['wall_median_s']:.2f} s |")
    print(f"| wall time, largest | {r['wall_max_s']:.2f} s |")
    print(f"| CPU: worker and its connectors | {r['worker_cpu_s_per_step']:.3f} core-s |")
    print(f"| CPU: Postgres (control and destination) | {r['postgres_cpu_s_per_step']:.3f} core-s |")
    print(f"| CPU: Temporal dev server | {r['temporal_cpu_s_per_step']:.3f} core-s |")
    print(f"| CPU: `serve` | {r['serve_cpu_s_per_step']:.3f} core-s |")
    print(f"| CPU: simulator and client | {r['simulator_and_client_cpu_s_per_step']:.3f} core-s |")
    total = sum(r[k] for k in ["worker_cpu_s_per_step", "postgres_cpu_s_per_step", "temporal_cpu_s_per_step",
                               "serve_cpu_s_per_step", "simulator_and_client_cpu_s_per_step"])
    print(f"| CPU in all | {total:.3f} core-s |")


def cpu():
    data = rows()
    print("CPU time per record, in microseconds: `sync-engine sync` of each stream alone (simulator without latency or limits, answering "
          "pretty-printed JSON as api.stripe.com does → source-stripe → dest-postgres), first into an empty table (its first batch "
          "copied straight in), then from scratch again into the same table after nine rows in ten were deleted (every batch merged "
          "through the staging table, as a re-sync or a reconcile is). Each process is charged its user and system time, read "
          "from `/proc` every 20 ms: the engine, its two connectors, every Postgres server process (backends and background "
          "workers), and the simulator (the benchmark's own process, but for its thread that samples `/proc`), whose column is per request answered (a page of 100): "
          "against api.stripe.com that work is Stripe's.")
    print("Reproduce: `scripts/bench cpu` (or `cargo bench -p sync-engine --bench cpu -- OBJECTS_PER_STREAM`).")
    print()
    print("| stream | into | records | source | engine | destination | Postgres | ours in all | simulator per request | wall s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in data:
        c = r["cpu_seconds"]
        per = lambda s: s / r["records"] * 1e6
        ours = c["source"] + c["engine"] + c["destination"] + c["postgres"]
        sim = c["simulator"] / max(r["requests"], 1) * 1e6
        into = {"empty": "empty table", "rows": "table with rows"}[r["into"]]
        print(f"| {r['stream']} | {into} | {r['records']:,} | {per(c['source']):.0f} | {per(c['engine']):.0f} | {per(c['destination']):.0f} "
              f"| {per(c['postgres']):.0f} | {per(ours):.0f} | {sim:,.0f} | {r['seconds']:.1f} |")
    print()
    shares = {}
    for r in data:
        c = r["cpu_seconds"]
        ours = c["source"] + c["engine"] + c["destination"] + c["postgres"]
        for part in ("postgres", "source", "destination", "engine"):
            shares.setdefault(part, []).append(c[part] / ours)
    span = lambda part: f"{min(shares[part]):.0%}–{max(shares[part]):.0%}"
    print("Ours in all is the source, the engine, the destination and Postgres together: what a sync costs this machine per record of "
          f"that stream, the simulator left out. Of it, Postgres takes {span('postgres')} (parsing the JSON, filling the generated "
          f"columns, compressing and indexing), the source {span('source')}, the destination {span('destination')} and the engine "
          f"{span('engine')}.")


def peers():
    data = rows()
    names = {"ours": "ours: `sync-engine sync`", "npm": "npm @stripe/sync-engine 1.0.32",
             "singer": "Singer tap-stripe 3.3.0 \\| pipelinewise-target-postgres 2.1.2"}
    print("The same five streams (customers, products, charges, payment_intents, invoices) backfilled from the simulator into a "
          "fresh schema each, one side after another in one run: ours (`sync-engine sync`: source-stripe → dest-postgres), Stripe's "
          "TypeScript engine (npm @stripe/sync-engine 1.0.32 through its library: migrations, then `fullSync` with 50 workers and "
          "its rate limiter lifted, or at its CLI's default of 25 requests/s under live limits) and Singer (tap-stripe 3.3.0 | "
          "pipelinewise-target-postgres 2.1.2, its 30-day windows from the day of the oldest object, its events phase skipped as "
          "ours reads no events here). Seconds run from process start to exit (the npm engine's migrations included). Each "
          "side's tables are checked against the simulator's listing: ids missing, and ids beyond it. CPU seconds: every "
          "process of the side, and every Postgres server process. The simulator lays every object out in Stripe's pretty "
          "JSON when it generates it (`prerender`), so a page costs it a copy: its CPU is shown per request.")
    print("Reproduce: `scripts/bench peers` (installs the peers under `.tools/peers`; or `cargo bench -p sync-engine --bench "
          "peers -- OBJECTS_PER_STREAM LIMITED_PER_STREAM ALONE_PER_STREAM` once they are).")
    live = "150-250 ms per request, 100 requests/s per account and 25 per endpoint (429 above), a live key"
    for variant, title in (("unlimited", "No latency, no limits"),
                           ("live_limits", f"Live limits: {live}"),
                           ("live_limits_alone", "Ours alone under the same live limits, on a larger backfill")):
        runs = [r for r in data if r["variant"] == variant and r["side"] in names]
        if not runs:
            continue
        ours = next((r for r in runs if r["side"] == "ours"), None)
        print()
        print(f"{title}, {runs[0]['records']:,} objects:")
        print()
        print("| side | seconds | records/s | ours × | requests | 429s | ids missing | ids beyond | client CPU s | Postgres CPU s | simulator µs/request |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in runs:
            extra = sum(v["extra"] for v in r["ids"].values())
            sim = r["cpu_seconds"]["simulator"] / max(r["requests"], 1) * 1e6
            if r["success"] and r["missing"] == 0:
                rate = r["records"] / r["seconds"]
                times = (ours["records"] / ours["seconds"]) / rate if ours else float("nan")
                failed, rate, times = "", f"{rate:,.0f}", f"{times:.1f}"
            else:
                # A run that failed or left ids out synced nothing a user could count on.
                failed, rate, times = " (failed)", "—", "—"
            print(f"| {names[r['side']]}{failed} | {r['seconds']:.1f} | {rate} | {times} | {r['requests']:,} | {r['rate_limited']:,} "
                  f"| {r['missing']:,} | {extra:,} | {r['cpu_seconds']['client']:.1f} | {r['cpu_seconds']['postgres']:.1f} | {sim:,.0f} |")
        floor = next((r for r in data if r["variant"] == variant and r["side"] == "postgres_floor"), None)
        if floor and ours:
            peers = [r for r in runs if r["side"] != "ours" and r["success"] and r["missing"] == 0]
            best = min(peers, key=lambda r: r["seconds"]) if peers else None
            print()
            print(f"Postgres alone: the {floor['records']:,} rows ours stored, copied out and loaded again by psql's text `COPY` "
                  f"(one connection per stream, the five at once) into tables of the same definition (the same generated columns, "
                  f"key and lz4 compression): {floor['seconds']:.1f} s ({floor['cpu_seconds']['postgres']:.1f} CPU-s of Postgres). "
                  f"The whole sync took {ours['seconds'] / floor['seconds']:.2f}× that (dest-postgres loads a stream over two "
                  f"connections, in binary `COPY`).", end="")
            if best:
                target = best["seconds"] / 15
                print(f" 15× the best peer ({best['seconds']:.1f} s / 15 = {target:.1f} s) would need Postgres to store these rows "
                      f"{floor['seconds'] / target:.1f}× faster than that `COPY` does.")
            else:
                print()
        if variant.startswith("live_limits") and ours:
            per_second = ours["ok_per_second"]
            whole = per_second[:-1]
            busy = sum(1 for n in whole if n >= 90)
            print()
            print(f"Ours, each second from the start of `sync-engine sync`: responses answered 200 in that second, against the "
                  f"account's limit of 100. Its first request, discover's account lookup, arrived {ours['first_request_ms']} ms after the "
                  f"engine started, its first list request (the backfill's start: after that answer, the destination's setup and the "
                  f"read's own account lookup) {ours.get('first_list_ms', '?')} ms after. {busy} of its "
                  f"{len(whole)} whole seconds at 0.90 of the limit or more; {ours['requests'] / ours['seconds']:.1f} requests/s "
                  f"over the whole run ({ours['requests'] / ours['seconds'] / 100:.2f} of the limit).")
            print()
            per_second_plot(per_second, 100)


if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
