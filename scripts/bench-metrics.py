#!/usr/bin/python3
"""scripts/bench-metrics.py: what one /metrics scrape of a large router costs (issue 18).

Starts `xpe run --metrics` on a veth pair in a namespace of its own with VRFS VRFs (one VLAN
attachment, one route and a table label each) and LABELS transit labels, scrapes /metrics
SCRAPES times from inside the namespace, and reports the time per scrape (client side, the
whole HTTP request), the size and the series count, and whether `promtool check metrics`
accepts the text. The goal: under 50 ms a scrape with 10,000 labels and 1,000 VRFs.

usage: scripts/bench-metrics.py --xpe target/release/xpe [--vrfs 1000] [--labels 10000]
                                [--scrapes 50] [--json FILE]
Needs root. Namespaces are named xbm<pid>-*, removed on exit; xpe is stopped by PID.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SCRAPE = """
import sys, time, urllib.request
url, n, body = sys.argv[1], int(sys.argv[2]), sys.argv[3]
took = []
for _ in range(n):
    t = time.perf_counter()
    text = urllib.request.urlopen(url, timeout=10).read()
    took.append((time.perf_counter() - t) * 1e3)
open(body, "wb").write(text)
print(" ".join(f"{x:.3f}" for x in took))
"""


def sh(*cmd, check=True):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"{' '.join(map(str, cmd))}: {r.stderr.strip()}")
    return r.stdout


def config(vrfs, labels):
    out = ['[router]\nname = "bm"\n',
           '[[interface]]\nname = "core0"\nkind = "core"\naddress = "198.18.0.1/30"\n',
           '[[interface]]\nname = "dx0"\nkind = "edge"\n',
           '[[neighbor]]\ninterface = "core0"\nip = "198.18.0.2"\nmac = "02:00:00:00:0c:02"\n']
    for i in range(vrfs):
        out.append(f'[[vrf]]\nname = "v{i}"\ntable_label = {100000 + i}\n'
                   f'[[vrf.attachment]]\ninterface = "dx0"\nvlan = {i + 1}\n'
                   f'address = "169.254.{i >> 6}.{(i & 63) * 4 + 1}/30"\n'
                   f'[[vrf.route]]\nprefix = "198.19.0.0/16"\nvia = "198.18.0.2"\nlabels = [16002, {200000 + i}]\n')
    for j in range(labels):
        out.append(f'[[label]]\nin = {300000 + j}\naction = "swap"\nout = [{500000 + j}]\nvia = "198.18.0.2"\n')
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xpe", required=True)
    ap.add_argument("--vrfs", type=int, default=1000)
    ap.add_argument("--labels", type=int, default=10000)
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench-metrics.py needs root (namespaces, XDP, AF_XDP)")
    if not (1 <= a.vrfs <= 4094 and 0 <= a.labels <= 200000 and a.scrapes >= 1):
        ap.error("--vrfs 1..4094, --labels 0..200000, --scrapes >= 1")
    prefix = f"xbm{os.getpid()}"
    dut, peer = f"{prefix}-dut", f"{prefix}-peer"
    work = tempfile.mkdtemp(prefix=prefix)
    xpe = None

    def cleanup(*_):
        if xpe and xpe.poll() is None:
            xpe.send_signal(signal.SIGTERM)
            try:
                xpe.wait(timeout=15)
            except subprocess.TimeoutExpired:
                xpe.kill()
        for ns in (dut, peer):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        for ns in (dut, peer):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for dev, other in (("core0", "c0"), ("dx0", "d0")):
            sh("ip", "link", "add", dev, "netns", dut, "type", "veth", "peer", "name", other, "netns", peer)
            sh("ip", "-n", dut, "link", "set", dev, "up")
            sh("ip", "-n", peer, "link", "set", other, "up")
        cfg = os.path.join(work, "bm.toml")
        with open(cfg, "w") as f:
            f.write(config(a.vrfs, a.labels))
        sock = os.path.join(work, "bm.sock")
        log = open(os.path.join(work, "xpe.log"), "w")
        xpe = subprocess.Popen(["ip", "netns", "exec", dut, a.xpe, "run", cfg, "--socket", sock, "--no-mirrors",
                                "--metrics", "127.0.0.1:9464"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while subprocess.run([a.xpe, "show", "runtime", "--socket", sock], capture_output=True).returncode != 0:
            if xpe.poll() is not None or time.time() > deadline:
                sys.exit(f"xpe did not start: {open(log.name).read()[-2000:]}")
            time.sleep(0.2)
        body = os.path.join(work, "metrics.txt")
        took = [float(x) for x in sh("ip", "netns", "exec", dut, "python3", "-c", SCRAPE,
                                     "http://127.0.0.1:9464/metrics", a.scrapes, body).split()]
        text = open(body).read()
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        took.sort()
        result = {
            "vrfs": a.vrfs,
            "labels": a.labels,
            "scrapes": len(took),
            "ms_median": round(statistics.median(took), 2),
            "ms_p90": round(took[int(len(took) * 0.9) - 1 if len(took) > 1 else 0], 2),
            "ms_max": round(took[-1], 2),
            "bytes": len(text),
            "series": series,
            "promtool": "ok" if check.returncode == 0 else (check.stdout + check.stderr).strip()[:500],
        }
        print(f"/metrics with {a.vrfs} VRFs and {a.labels} labels: {series} series, {len(text):,} bytes; "
              f"{len(took)} scrapes, median {result['ms_median']} ms, p90 {result['ms_p90']} ms, "
              f"max {result['ms_max']} ms (goal < 50 ms); promtool check metrics: {result['promtool']}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
