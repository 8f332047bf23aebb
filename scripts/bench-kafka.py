#!/usr/bin/env python3
"""The agent into Kafka, variant against variant, runs interleaved in one sitting.

Each variant is a collector binary with optional environment and agent settings; every round runs each variant
once (`agent --once`) over the same warm corpus into a new topic of the test broker, and reports the child's CPU
time (user + system, from wait4), its CPU split by thread (sampled from /proc while it runs) and its peak RSS.
Medians per variant at the end.

    scripts/bench-kafka.py --corpus target/tmp/bench-corpus-256 --runs 5 \\
        --variant base=/tmp/base/logpipe-collector \\
        --variant new=target/release/logpipe-collector:MIMALLOC_PURGE_DELAY=0:max_in_flight_bytes=4194304

A corpus comes from `LOGPIPE_BENCH_MIB=256 cargo bench -p logpipe-collector --bench agent` (it is left in
target/tmp). The broker is $LOGPIPE_TEST_KAFKA (scripts/testenv.sh up), on loopback only.
"""

import argparse
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

SETTINGS = {"max_in_flight_bytes", "checkpoint_interval_ms"}
SINK_SETTINGS = {"linger_ms", "batch_bytes", "frame_bytes"}


def parse_variant(text):
    label, rest = text.split("=", 1)
    parts = rest.split(":")
    variant = {"label": label, "binary": parts[0], "env": {}, "agent": {}, "sink": {}, "properties": {}}
    for part in parts[1:]:
        key, value = part.split("=", 1)
        if key in SETTINGS:
            variant["agent"][key] = value
        elif key in SINK_SETTINGS:
            variant["sink"][key] = value
        elif key.isupper():
            variant["env"][key] = value
        else:
            variant["properties"][key] = value
    return variant


def create_topic(bootstrap, topic, partitions):
    """CreateTopics v2 (the test broker closes the connection on v0 and v1), one topic of replication factor 1,
    spoken directly to the first bootstrap address."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    string = lambda s: struct.pack(">h", len(s)) + s.encode()
    body = struct.pack(">hhi", 19, 2, 1) + string("bench")
    body += struct.pack(">i", 1) + string(topic) + struct.pack(">ihii", partitions, 1, 0, 0) + struct.pack(">ib", 10000, 0)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", s.recv(4))[0]
        answer = b""
        while len(answer) < size:
            answer += s.recv(size - len(answer))
    # v2 ends each topic with an error code and a nullable message (null: -1).
    error = struct.unpack(">h", answer[-4:-2])[0]
    if error not in (0, 36):
        sys.exit(f"creating {topic}: error {error}")


def threads(pid):
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            ticks = int(fields[11]) + int(fields[12])
            out[tid] = (name, ticks)
    except (FileNotFoundError, ProcessLookupError):
        pass
    return out


def run(variant, corpus, bootstrap, compression, partitions):
    topic = f"bench-{uuid.uuid4().hex[:10]}"
    create_topic(bootstrap, topic, partitions)
    with tempfile.TemporaryDirectory() as state:
        lines = [f'tail:\n  include: ["{corpus}/pods/*/*/*.log"]', f"state_dir: {state}/state"]
        lines += [f"{k}: {v}" for k, v in variant["agent"].items()]
        lines += ["sink:", "  type: kafka", f'  bootstrap_servers: "{bootstrap}"', f"  topic: {topic}",
                  f"  compression: {compression}"]
        lines += [f"  {k}: {v}" for k, v in variant["sink"].items()]
        if variant["properties"]:
            lines.append("  properties:")
            lines += [f'    {k}: "{v}"' for k, v in variant["properties"].items()]
        config = os.path.join(state, "agent.yaml")
        with open(config, "w") as f:
            f.write("\n".join(lines) + "\n")
        env = dict(os.environ, RUST_LOG="warn", **variant["env"])
        start = time.monotonic()
        child = subprocess.Popen([variant["binary"], "agent", "--once", "--config", config], env=env,
                                 stdout=subprocess.DEVNULL)
        seen = {}
        while True:
            seen.update(threads(child.pid))
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        if child.returncode != 0:
            sys.exit(f"{variant['label']}: the agent failed ({child.returncode})")
    cpu = usage.ru_utime + usage.ru_stime
    return cpu, wall, usage.ru_maxrss / 1024, seen


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--compression", default="lz4")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--variant", action="append", required=True)
    args = p.parse_args()
    bootstrap = os.environ.get("LOGPIPE_TEST_KAFKA")
    if not bootstrap or not bootstrap.startswith(("127.", "[::1]", "localhost")):
        sys.exit("LOGPIPE_TEST_KAFKA must name the loopback test broker (scripts/testenv.sh up)")
    variants = [parse_variant(v) for v in args.variant]
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.corpus) for f in fs)
    hz = os.sysconf("SC_CLK_TCK")
    results = {v["label"]: [] for v in variants}
    print(f"corpus {size / 2**20:.0f} MiB, {args.compression}, {args.runs} rounds")
    for round_ in range(args.runs):
        for v in variants:
            cpu, wall, rss_mib, seen = run(v, args.corpus, bootstrap, args.compression, args.partitions)
            by_name = {}
            for name, ticks in seen.values():
                by_name[name] = by_name.get(name, 0) + ticks / hz
            split = ", ".join(f"{n} {s:.2f}" for n, s in sorted(by_name.items(), key=lambda x: -x[1])[:3])
            results[v["label"]].append((cpu, rss_mib))
            print(f"round {round_ + 1} {v['label']:<12} cpu {cpu:6.2f} s  {size / 2**20 / cpu:6.1f} MiB/cpu-s  "
                  f"wall {wall:6.2f} s  peak RSS {rss_mib:6.1f} MiB  threads: {split}", flush=True)
    print("medians:")
    for label, rs in results.items():
        cpu = statistics.median(r[0] for r in rs)
        rss = statistics.median(r[1] for r in rs)
        print(f"  {label:<12} cpu {cpu:.2f} s, {size / 2**20 / cpu:.1f} MiB/cpu-s, peak RSS {rss:.1f} MiB")


if __name__ == "__main__":
    main()
