#!/usr/bin/python3
"""The pps harness behind scripts/bench-pps.sh (run that: it installs, builds, then runs this).

    [gen ns] g0 --veth-- in [dut ns] out --veth-- s0 [sink ns]

`xpe gen` (XDP live frames) on CPU0 offers frames to the DUT; the DUT forwards them to the
sink, whose XDP program (`xpe sink`) counts and drops. DUTs, one after the other in one run so
the machine's drift cancels in their ratios: xpe, the trivial AF_XDP forwarder (xpe-fwd, our
I/O ceiling), xpe with its XDP fast path (`--fast-path xdp`: the label work the fast path
takes is done in the ingress veth's XDP program, the rest by the worker), Open vSwitch 3.1 (userspace datapath, AF_XDP ports, OpenFlow label actions), the
Linux kernel forwarding plain IPv4, and in-kernel XDP redirect (`xpe xdp-fwd`, the kernel's
ceiling; on request also `xdp-redirect-read`, which reads each frame's Ethernet destination
before it writes, and `xpe-xdp-base`, the fast path of the --xpe-base build). Placements (shared/MEASURING.md), generator always on CPU0:

    P0    the DUT on CPU1 (AF_XDP DUTs: worker / PMD thread; kernel DUTs: the ingress veth's
          threaded NAPI pinned to CPU1); the sink's receive work on CPU0 (threaded NAPI).
    P0s1  as P0, but the sink's receive work runs on CPU1 as softirq, inside the DUT's
          transmit: the DUT core saturates, so this shows the most a DUT delivers.

Before a DUT's number counts, a sample of its output is captured at the sink (GRO on, no XDP)
and checked: labels, label TTLs, VLAN id, IP TTL, MACs. A DUT whose sample is wrong gets no
row and a line saying why.

Counting: offered = the generator veth's xdp_xmit + xdp_xmit_errors, delivered = the sink
veth's xdp_drops (both `ethtool -S`), over a window that opens --warmup seconds after the
generator starts and lasts --seconds. Cycles per packet: xpe `show runtime` (busy TSC cycles
over packets, the window's deltas), xpe-fwd's exit report (the whole run), OVS
`dpif-netdev/pmd-stats-show` "avg processing cycles per packet" (cleared at the window's
start). Kernel DUTs report none.

Order: by default every run of one DUT, then the next, scenario by scenario. With
--interleave, round by round: each DUT of a scenario is started, measured once and stopped in
turn, so run i of every DUT falls within the same half minute. This machine switches between
two speed levels now and then (benches/README.md, issue 17); the rows then see the same mix of
levels, and the goal lines add the median of the per-round ratios.

Everything it makes is named xbp<pid>*, removed on exit (also on failure or Ctrl-C); every
process it starts is stopped by PID. Test addresses: 198.18.0.0/15 only.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

DEFAULT_DUTS = ["xpe", "xpe-xdp", "forwarder", "ovs-afxdp", "kernel", "xdp-redirect"]
# Issue 18's DUTs, measured on request: xpe as built before (--xpe-base), xpe with a capture
# of every sent frame running, and xpe scraped on /metrics (ten times a second, or every
# --scrape-every seconds). And the fast path as built before (--xpe-base with --fast-path xdp),
# to compare two builds of the XDP program round by round.
OBSERVED = ["xpe-base", "xpe-capture", "xpe-scrape", "xpe-xdp-base"]
# The in-kernel forwarder that reads each frame's Ethernet destination before it writes
# (`xpe xdp-fwd --check-dst`), as a forwarder must and as xdp-bench's redirect-map mode reads the
# addresses it swaps; measured on request, next to the write-only xdp-redirect.
READING = ["xdp-redirect-read"]
FAST = ("xpe-xdp", "xpe-xdp-base")
DUTS = DEFAULT_DUTS + OBSERVED + READING
XPES = ("xpe", "xpe-xdp", *OBSERVED)
METRICS = "127.0.0.1:9464"
# The scraper of the xpe-scrape DUT: GET /metrics every EVERY s, one line of timings at the end.
SCRAPER = """
import sys, time, urllib.request
url, until, every = sys.argv[1], time.time() + float(sys.argv[2]), float(sys.argv[3])
took, size = [], 0
while time.time() < until:
    t = time.perf_counter()
    size = len(urllib.request.urlopen(url, timeout=5).read())
    took.append((time.perf_counter() - t) * 1e3)
    time.sleep(every)
took.sort()
print(f"{len(took)} {took[len(took) // 2]:.2f} {took[-1]:.2f} {size}")
"""
# DUTs whose forwarding runs in the ingress veth's receive path (NAPI), pinned to the DUT core.
IN_KERNEL = ("kernel", "xdp-redirect", *READING, *FAST)
SCENARIOS = ["swap", "impose", "dispose", "impose-1m"]
PLACEMENTS = ["P0", "P0s1"]
CPU_GEN, CPU_DUT, CPU_SINK_P0 = 0, 1, 0

MAC_G0 = "02:00:00:00:0b:01"
MAC_IN = "02:00:00:00:0b:02"
MAC_OUT = "02:00:00:00:0b:03"
MAC_SINK = "02:00:00:00:0b:04"
SINK_IP = "198.18.31.2"
SRC_IP = "198.18.0.1"
DST_IP = "198.19.0.0"  # flows vary it over 198.19.0.0/16
SPREAD = 65536  # flows of the imposition pair that compares a 10-route and a 1M-route VRF

# What each scenario's input frame carries (xpe gen arguments) and what a DUT doing the label
# work must emit: (eth.type, vlan.id, mpls.label, mpls.ttl, ip.ttl).
SCENARIO_IN = {
    "swap": ["--labels", "16001/0/64,2001/0/64"],
    "impose": ["--vlan", "101"],
    "dispose": ["--labels", "1001/0/64"],
    "impose-1m": ["--vlan", "101"],
    "kernel": [],
}
EXPECT_WORK = {
    "swap": ("0x8847", "", "16002,2001", "63,64", "64"),
    "impose": ("0x8847", "", "16001,2001", "63,63", "63"),
    "dispose": ("0x8100", "101", "", "", "63"),
    "impose-1m": ("0x8847", "", "16001,2001", "63,63", "63"),
    "kernel": ("0x0800", "", "", "", "63"),
}
# What an I/O-only DUT (forwarder, xdp-redirect) emits: the input with new MACs.
EXPECT_IO = {
    "swap": ("0x8847", "", "16001,2001", "64,64", "64"),
    "impose": ("0x8100", "101", "", "", "64"),
    "dispose": ("0x8847", "", "1001", "64", "64"),
    "impose-1m": ("0x8100", "101", "", "", "64"),
}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Failure(Exception):
    """A DUT or step that could not be measured: reported, the harness goes on."""


class Harness:
    def __init__(self, args):
        self.args = args
        self.p = f"xbp{os.getpid()}"
        self.ns = {n: f"{self.p}-{n}" for n in ("gen", "dut", "sink")}
        self.dev = {k: f"{self.p}{k}" for k in ("g0", "in", "out", "s0")}
        self.work = tempfile.mkdtemp(prefix=f"{self.p}.")
        self.procs = []  # every process we start, stopped by PID on exit
        self.rows = []
        self.notes = []

    # ------------------------------------------------------------------ plumbing
    def sh(self, *cmd, ns=None, check=True, timeout=120):
        full = (["ip", "netns", "exec", self.ns[ns]] if ns else []) + [str(c) for c in cmd]
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise Failure(f"{' '.join(full)} failed: {r.stderr.strip() or r.stdout.strip()}")
        return r.stdout

    def spawn(self, *cmd, ns=None, cpu=None, out=None, env=None):
        full = [str(c) for c in cmd]
        if cpu is not None:
            full = ["taskset", "-c", str(cpu)] + full
        if ns:
            full = ["ip", "netns", "exec", self.ns[ns]] + full
        stdout = open(out, "w") if out else subprocess.DEVNULL
        p = subprocess.Popen(full, stdout=stdout, stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
                             env=env, start_new_session=True)
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGINT, wait=15):
        if p is None or p.poll() is not None:
            return p.returncode if p else None
        try:
            p.send_signal(sig)
            return p.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait()

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                self.stop(p, signal.SIGTERM, wait=10)
        for n in self.ns.values():
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
        shutil.rmtree(self.work, ignore_errors=True)

    def ethtool_stats(self, ns, dev):
        stats = {}
        for line in self.sh("ethtool", "-S", dev, ns=ns).splitlines():
            k, _, v = line.strip().partition(":")
            if v.strip().isdigit():
                stats[k.strip()] = int(v)
        return stats

    def offered(self):
        s = self.ethtool_stats("gen", self.dev["g0"])
        return sum(v for k, v in s.items() if re.fullmatch(r"tx_queue_\d+_xdp_xmit(_errors)?", k))

    @staticmethod
    def cpu_times():
        """Per CPU: (busy, idle, steal) in clock ticks from /proc/stat."""
        out = {}
        for line in open("/proc/stat"):
            f = line.split()
            if f[0].startswith("cpu") and f[0] != "cpu":
                v = [int(x) for x in f[1:]]
                # user nice system idle iowait irq softirq steal
                out[int(f[0][3:])] = (v[0] + v[1] + v[2] + v[5] + v[6], v[3] + v[4], v[7])
        return out

    def delivered(self):
        s = self.ethtool_stats("sink", self.dev["s0"])
        return sum(v for k, v in s.items() if re.fullmatch(r"rx_queue_\d+_xdp_drops", k))

    # ------------------------------------------------------------------ topology
    def topology(self, queues=1):
        """The three namespaces and two veth pairs; `queues` RX and TX queues on every veth."""
        for n in self.ns.values():
            self.sh("ip", "netns", "add", n)
        # The xpe-scrape DUT serves /metrics on the DUT namespace's loopback.
        self.sh("ip", "link", "set", "lo", "up", ns="dut")
        d = self.dev
        q = ["numtxqueues", str(queues), "numrxqueues", str(queues)]
        self.sh("ip", "link", "add", d["g0"], "netns", self.ns["gen"], "address", MAC_G0, *q, "type", "veth",
                "peer", "name", d["in"], "netns", self.ns["dut"], "address", MAC_IN, *q)
        self.sh("ip", "link", "add", d["out"], "netns", self.ns["dut"], "address", MAC_OUT, *q, "type", "veth",
                "peer", "name", d["s0"], "netns", self.ns["sink"], "address", MAC_SINK, *q)
        for ns, dev in (("gen", d["g0"]), ("dut", d["in"]), ("dut", d["out"]), ("sink", d["s0"])):
            self.sh("ethtool", "-K", dev, "rxvlan", "off", "txvlan", "off", ns=ns)
            self.sh("ip", "link", "set", dev, "up", ns=ns)
            self.sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=ns)

    def threaded(self, ns, dev, on):
        # A veth has NAPI only with XDP or GRO on; without it the kernel refuses the write
        # (EIO), and there is nothing to thread anyway, so turning it off may fail quietly.
        self.sh("sh", "-c", f"echo {1 if on else 0} > /sys/class/net/{dev}/threaded", ns=ns, check=on)

    def pin_napi(self, dev, cpu):
        """Pins the NAPI kthread of DEV (threaded mode on) to CPU; its PID changes whenever an
        XDP program is attached or detached, so this runs after every such change."""
        found = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith(f"napi/{dev}-"):
                if subprocess.run(["taskset", "-pc", str(cpu), pid], capture_output=True).returncode == 0:
                    found.append(pid)
        if not found:
            raise Failure(f"no NAPI kthread for {dev} (threaded mode did not take)")

    def place(self, placement, kernel_dut):
        """Where receive work runs: see the module doc."""
        d = self.dev
        self.threaded("dut", d["in"], kernel_dut)
        if kernel_dut:
            self.pin_napi(d["in"], CPU_DUT)
        self.threaded("sink", d["s0"], placement == "P0")
        if placement == "P0":
            self.pin_napi(d["s0"], CPU_SINK_P0)

    # ------------------------------------------------------------------ generator
    def gen_args(self, scenario, size, flows):
        a = ["--dev", self.dev["g0"], "--dst-mac", MAC_IN, "--src", SRC_IP, "--dst", DST_IP,
             "--size", str(size - 4), "--flows", str(flows)]
        # Flow f adds f to the source and destination addresses and both UDP ports: destinations
        # 198.19.0.0 + f stay inside the DUTs' 198.19.0.0/16 routes.
        return a + ["--vary", "src,dst,ports"] + SCENARIO_IN[scenario]

    # ------------------------------------------------------------------ verification
    def verify(self, dut, scenario, size):
        """Captures a sample of the DUT's output at the sink and checks it."""
        d = self.dev
        self.sh("ethtool", "-K", d["s0"], "gro", "on", ns="sink")
        pcap = os.path.join(self.work, "verify.pcapng")
        errf = os.path.join(self.work, "tshark.err")
        n = 8
        cap = self.spawn("tshark", "-i", d["s0"], "-f", "not ip6 and not arp", "-c", n, "-a", "duration:20",
                         "-w", pcap, ns="sink", out=errf)
        deadline = time.time() + 20
        while "Capturing on" not in open(errf).read():
            if time.time() > deadline or cap.poll() is not None:
                raise Failure(f"tshark did not start on {d['s0']}: {open(errf).read().strip()}")
            time.sleep(0.1)
        time.sleep(1)
        self.sh(self.args.xpe, "gen", *self.gen_args(scenario, size, 4), "--count", n, "--rate", 100, ns="gen")
        try:
            cap.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.stop(cap)
        out = subprocess.run(["tshark", "-r", pcap, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
                              "-e", "eth.type", "-e", "vlan.id", "-e", "mpls.label", "-e", "mpls.ttl",
                              "-e", "ip.ttl", "-e", "eth.src", "-e", "eth.dst", "-e", "frame.len"],
                             capture_output=True, text=True).stdout
        rows = [r.split("\t") for r in out.splitlines()]
        io_only = dut in ("forwarder", "xdp-redirect", *READING)
        want = (EXPECT_IO if io_only else EXPECT_WORK)["kernel" if dut == "kernel" else scenario]
        # Imposition drops the tag (4) and pushes two labels (8); disposition pops one label and
        # pushes one tag; a swap keeps the length.
        grow = {"impose": 4, "impose-1m": 4}.get(scenario, 0) if not io_only else 0
        if dut == "kernel":
            grow = 0
        want_len = max(60, size - 4 + grow)
        bad = []
        for r in rows:
            eth_type = r[0].split(",")[0]
            got = (eth_type, r[1], r[2], r[3], r[4].split(",")[-1])
            if got != want or r[5] != MAC_OUT or r[6] != MAC_SINK or int(r[7]) != want_len:
                bad.append(f"{got} {r[5]}->{r[6]} {r[7]} bytes")
        self.sh("ethtool", "-K", d["s0"], "gro", "off", ns="sink")
        if len(rows) < n or bad:
            raise Failure(f"{dut} {scenario} {size}: output sample wrong: got {len(rows)} of {n} frames, "
                          f"want {want} {MAC_OUT}->{MAC_SINK} {want_len} bytes; bad: {bad[:2]}")
        return f"{want[0]} vlan={want[1] or '-'} labels={want[2] or '-'} ttls={want[3] or '-'} ip.ttl={want[4]}"

    # ------------------------------------------------------------------ DUTs
    def xpe_config(self, scenario):
        sink_side = f'''
[[interface]]
name = "{self.dev['out']}"
kind = "core"
address = "198.18.31.1/30"

[[neighbor]]
interface = "{self.dev['out']}"
ip = "{SINK_IP}"
mac = "{MAC_SINK}"
'''
        head = f'[router]\nname = "{self.p}"\n'
        if scenario == "swap":
            body = f'''
[[interface]]
name = "{self.dev['in']}"
kind = "core"
address = "198.18.30.1/30"
{sink_side}
[[label]]
in = 16001
action = "swap"
out = [16002]
via = "{SINK_IP}"
'''
        elif scenario == "dispose":
            body = f'''
[[interface]]
name = "{self.dev['in']}"
kind = "core"
address = "198.18.30.1/30"

[[interface]]
name = "{self.dev['out']}"
kind = "edge"

[[neighbor]]
interface = "{self.dev['out']}"
vlan = 101
ip = "198.18.31.2"
mac = "{MAC_SINK}"

[[vrf]]
name = "vpc-a"
table_label = 1001

[[vrf.attachment]]
interface = "{self.dev['out']}"
vlan = 101
address = "198.18.31.1/30"

[[vrf.route]]
prefix = "198.19.0.0/16"
via = "{SINK_IP}"
'''
        else:
            body = f'''
[[interface]]
name = "{self.dev['in']}"
kind = "edge"
{sink_side}
[[vrf]]
name = "vpc-a"
table_label = 1001

[[vrf.attachment]]
interface = "{self.dev['in']}"
vlan = 101
address = "198.18.30.1/30"
'''
            routes = [("198.19.0.0/16", '[16001, 2001]')]
            others = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"] + \
                [f"198.18.{i}.0/24" for i in range(100, 106)]
            routes += [(p, "[16001, 2002]") for p in others]
            path = os.path.join(self.work, f"{scenario}.toml")
            with open(path, "w") as f:
                f.write(head + body)
                for prefix, labels in routes:
                    f.write(f'\n[[vrf.route]]\nprefix = "{prefix}"\nvia = "{SINK_IP}"\nlabels = {labels}\n')
                if scenario == "impose-1m":
                    self.write_1m(f, 1_000_000 - len(routes))
            return path
        path = os.path.join(self.work, f"{scenario}.toml")
        with open(path, "w") as f:
            f.write(head + body)
        return path

    def write_1m(self, f, n):
        """N more routes: 65,536 host routes for every address the flows send to (so each
        lookup ends on its own /32), the rest random prefixes outside 198.18.0.0/15 with the
        length mix of a public table."""
        hosts = min(n, 65536)
        for i in range(hosts):
            f.write(f'\n[[vrf.route]]\nprefix = "198.19.{i >> 8}.{i & 255}/32"\nvia = "{SINK_IP}"\nlabels = [16001, 2001]\n')
        rng = random.Random(1)
        seen = set()
        lens = [8] * 1 + [16] * 10 + [20] * 20 + [22] * 90 + [23] * 80 + [24] * 600 + [19] * 30 + [21] * 40
        while len(seen) < n - hosts:
            ln = rng.choice(lens)
            addr = rng.randrange(1 << 24, 224 << 24) & ((0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF)
            if (addr >> 17) == (0xC612 >> 1) or (addr, ln) in seen:  # 198.18.0.0/15
                continue
            if ln < 15 and (0xC6120000 & ((0xFFFFFFFF << (32 - ln)) & 0xFFFFFFFF)) == addr:
                continue  # a short prefix covering 198.18.0.0/15
            seen.add((addr, ln))
            a = f"{addr >> 24}.{(addr >> 16) & 255}.{(addr >> 8) & 255}.{addr & 255}"
            f.write(f'\n[[vrf.route]]\nprefix = "{a}/{ln}"\nvia = "{SINK_IP}"\nlabels = [16001, 2002]\n')

    def start_dut(self, dut, scenario):
        """Starts DUT for SCENARIO; returns a handle dict: proc(s), how to read cycles, stop."""
        d = self.dev
        # The kernel forwards plain IPv4 (no MPLS, no VLAN devices here): its frames are untagged.
        h = {"dut": dut, "procs": [], "frames": "kernel" if dut == "kernel" else scenario}
        if dut in XPES:
            cfg = self.xpe_config(scenario)
            sock = os.path.join(self.work, "xpe.sock")
            log_path = os.path.join(self.work, "xpe.log")
            fast = ["--fast-path", "xdp"] if dut in FAST else []
            fast += ["--metrics", METRICS] if dut == "xpe-scrape" else []
            binary = self.args.xpe_base if dut in ("xpe-base", "xpe-xdp-base") else self.args.xpe
            h["xpe"] = binary
            p = self.spawn(binary, "run", cfg, "--cores", CPU_DUT, "--socket", sock, *fast, ns="dut",
                           out=log_path)
            h["procs"].append(p)
            h["socket"] = sock
            deadline = time.time() + 180
            while subprocess.run([binary, "show", "runtime", "--socket", sock],
                                 capture_output=True).returncode != 0:
                if p.poll() is not None or time.time() > deadline:
                    raise Failure(f"xpe did not start: {open(log_path).read()[-2000:]}")
                time.sleep(0.2)
        elif dut == "forwarder":
            h["restart_per_run"] = True
        elif dut == "ovs-afxdp":
            self.start_ovs(h, scenario)
        elif dut == "kernel":
            for k in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                      "net.ipv4.conf.default.rp_filter=0", f"net.ipv4.conf.{d['in']}.rp_filter=0"):
                self.sh("sysctl", "-qw", k, ns="dut")
            self.sh("ip", "addr", "add", "198.18.30.1/30", "dev", d["in"], ns="dut")
            self.sh("ip", "addr", "add", "198.18.31.1/30", "dev", d["out"], ns="dut")
            self.sh("ip", "route", "add", "198.19.0.0/16", "via", SINK_IP, ns="dut")
            self.sh("ip", "neigh", "replace", SINK_IP, "lladdr", MAC_SINK, "dev", d["out"], "nud", "permanent", ns="dut")
            # Live frames need the receiver to have XDP or GRO; the kernel DUT gets GRO.
            self.sh("ethtool", "-K", d["in"], "gro", "on", ns="dut")
            h["undo"] = lambda: [self.sh("ip", "addr", "flush", "dev", d["in"], ns="dut"),
                                 self.sh("ip", "addr", "flush", "dev", d["out"], ns="dut"),
                                 self.sh("ethtool", "-K", d["in"], "gro", "off", ns="dut")]
        elif dut in ("xdp-redirect", *READING):
            check = ["--check-dst"] if dut in READING else []
            p = self.spawn(self.args.xpe, "xdp-fwd", d["in"], d["out"], "--dst-mac", MAC_SINK, *check, ns="dut",
                           out=os.path.join(self.work, "xdpfwd.log"))
            h["procs"].append(p)
            time.sleep(1.5)
            if p.poll() is not None:
                raise Failure(f"xpe xdp-fwd exited: {open(os.path.join(self.work, 'xdpfwd.log')).read()[-1000:]}")
        return h

    def start_forwarder(self, h):
        out = os.path.join(self.work, "fwd.json")
        p = self.spawn(self.args.fwd, self.dev["in"], self.dev["out"], "--dst-mac", MAC_SINK, "--cores", CPU_DUT,
                       "--json", ns="dut", out=out)
        h["fwd"] = (p, out)
        time.sleep(1.0)
        if p.poll() is not None:
            raise Failure(f"xpe-fwd exited: {open(out).read()[-1000:]}")

    def stop_forwarder(self, h):
        p, out = h.pop("fwd")
        self.stop(p)
        for line in open(out):
            if line.startswith("{"):
                return json.loads(line).get("busy_cycles_per_packet")
        return None

    def start_ovs(self, h, scenario):
        missing = [b for b in ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")
                   if not shutil.which(b)]
        if missing:
            raise Failure(f"Open vSwitch is not installed ({', '.join(missing)} missing): run scripts/setup.sh --bench")
        run = os.path.join(self.work, "ovs")
        os.makedirs(run, exist_ok=True)
        env = dict(os.environ, OVS_RUNDIR=run, OVS_LOGDIR=run, OVS_DBDIR=run, OVS_SYSCONFDIR=run)
        db = os.path.join(run, "conf.db")
        sock = f"unix:{run}/db.sock"
        r = subprocess.run(["ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise Failure(f"ovsdb-tool create: {r.stderr.strip()}")
        h["procs"].append(self.spawn("ovsdb-server", db, f"--remote=punix:{run}/db.sock",
                                     f"--unixctl={run}/ovsdb.ctl", f"--log-file={run}/ovsdb.log", env=env,
                                     cpu=CPU_GEN))
        vsctl = ["ovs-vsctl", f"--db={sock}", "--timeout=30"]
        for _ in range(50):
            if subprocess.run(vsctl + ["--no-wait", "init"], capture_output=True, env=env).returncode == 0:
                break
            time.sleep(0.1)
        r = subprocess.run(vsctl + ["--no-wait", "set", "Open_vSwitch", ".",
                                    f"other_config:pmd-cpu-mask={1 << CPU_DUT:#x}"], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise Failure(f"ovsdb-server did not come up: {r.stderr.strip()}")
        h["procs"].append(self.spawn("ovs-vswitchd", sock, f"--unixctl={run}/vsd.ctl", f"--log-file={run}/vsd.log",
                                     ns="dut", env=env))
        h["ovs_ctl"] = f"{run}/vsd.ctl"
        h["ovs_env"] = env
        d = self.dev
        cmds = [["add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev"],
                ["add-port", "br0", d["in"], "--", "set", "interface", d["in"], "type=afxdp",
                 "options:xdp-mode=native", "ofport_request=1"],
                ["add-port", "br0", d["out"], "--", "set", "interface", d["out"], "type=afxdp",
                 "options:xdp-mode=native", "ofport_request=2"]]
        for c in cmds:
            r = subprocess.run(vsctl + c, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise Failure(f"ovs-vsctl {' '.join(c)}: {r.stderr.strip()}")
        macs = f"set_field:{MAC_OUT}->eth_src,set_field:{MAC_SINK}->eth_dst,output:2"
        flows = {
            "swap": f"in_port=1,mpls,mpls_label=16001,actions=set_field:16002->mpls_label,dec_mpls_ttl,{macs}",
            "impose": "in_port=1,dl_vlan=101,ip,nw_dst=198.19.0.0/16,actions=pop_vlan,dec_ttl,"
                      "push_mpls:0x8847,set_field:2001->mpls_label,push_mpls:0x8847,set_field:16001->mpls_label,"
                      f"{macs}",
            "dispose": "in_port=1,mpls,mpls_label=1001,mpls_bos=1,actions=pop_mpls:0x0800,dec_ttl,"
                       f"push_vlan:0x8100,set_field:{0x1000 | 101}->vlan_vid,{macs}",
        }[scenario]
        ofctl = ["ovs-ofctl", "-O", "OpenFlow13"]
        subprocess.run(ofctl + ["del-flows", "br0"], capture_output=True, env=env)
        r = subprocess.run(ofctl + ["add-flow", "br0", flows], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise Failure(f"ovs-ofctl add-flow: {r.stderr.strip()}")
        h["flows"] = flows

    def ovs_appctl(self, h, *cmd):
        return subprocess.run(["ovs-appctl", "-t", h["ovs_ctl"], *cmd], capture_output=True, text=True,
                              env=h["ovs_env"]).stdout

    def stop_dut(self, h):
        for p in reversed(h["procs"]):
            self.stop(p, signal.SIGTERM)
        if "undo" in h:
            h["undo"]()
        if h["dut"] == "ovs-afxdp":
            shutil.rmtree(os.path.join(self.work, "ovs"), ignore_errors=True)

    # ------------------------------------------------------------------ one measurement
    def xpe_cycles(self, h):
        r = subprocess.run([h["xpe"], "show", "runtime", "--json", "--socket", h["socket"]],
                           capture_output=True, text=True)
        w = json.loads(r.stdout)["workers"]
        return sum(x["busy_cycles"] for x in w), sum(x["packets"] for x in w)

    def run_once(self, h, size, flows):
        if h.get("restart_per_run"):
            self.start_forwarder(h)
        g = self.spawn(self.args.xpe, "gen", *self.gen_args(h["frames"], size, flows),
                       "--duration", self.args.warmup + self.args.seconds + 1, "--json",
                       *(["--rate", int(self.args.rate * 1e6)] if self.args.rate else []), ns="gen", cpu=CPU_GEN,
                       out=os.path.join(self.work, "gen.out"))
        time.sleep(self.args.warmup)
        watcher = None
        if h["dut"] == "xpe-capture":
            watcher = self.spawn(self.args.xpe, "capture", "--socket", h["socket"], "--tx", "--duration",
                                 self.args.seconds, "-w", os.path.join(self.work, "tx.pcapng"),
                                 out=os.path.join(self.work, "capture.out"))
        elif h["dut"] == "xpe-scrape":
            # The scraper stands for a Prometheus server elsewhere: off the DUT core.
            watcher = self.spawn("python3", "-c", SCRAPER, f"http://{METRICS}/metrics", self.args.seconds,
                                 self.args.scrape_every, ns="dut", cpu=CPU_GEN,
                                 out=os.path.join(self.work, "scrape.out"))
        o0, d0, t0, k0 = self.offered(), self.delivered(), time.time(), self.cpu_times()
        # The fast path's frames never reach the worker, whose cycles then say nothing.
        c0 = self.xpe_cycles(h) if h["dut"] in XPES and h["dut"] not in FAST else None
        if h["dut"] == "ovs-afxdp":
            self.ovs_appctl(h, "dpif-netdev/pmd-stats-clear")
        time.sleep(self.args.seconds)
        o1, d1, t1, k1 = self.offered(), self.delivered(), time.time(), self.cpu_times()
        # How busy each CPU was in the window (of ticks busy, idle or stolen by the host).
        busy = {c: (k1[c][0] - k0[c][0]) / max(1, sum(k1[c]) - sum(k0[c])) for c in (CPU_GEN, CPU_DUT)}
        steal = sum(k1[c][2] - k0[c][2] for c in k1) / max(1, sum(sum(k1[c]) - sum(k0[c]) for c in k1))
        log(f"   run: offered {(o1 - o0) / (t1 - t0) / 1e6:.3f} delivered {(d1 - d0) / (t1 - t0) / 1e6:.3f} Mpps; "
            f"CPU{CPU_GEN} {busy[CPU_GEN]:.0%} busy, CPU{CPU_DUT} {busy[CPU_DUT]:.0%} busy, {steal:.1%} stolen")
        cycles = None
        if c0:
            c1 = self.xpe_cycles(h)
            cycles = (c1[0] - c0[0]) / max(1, c1[1] - c0[1])
        if h["dut"] == "ovs-afxdp":
            m = re.search(r"avg processing cycles per packet: ([\d.]+)",
                          self.ovs_appctl(h, "dpif-netdev/pmd-stats-show"))
            cycles = float(m.group(1)) if m else None
        try:
            g.wait(timeout=self.args.warmup + self.args.seconds + 30)
        except subprocess.TimeoutExpired:
            self.stop(g)
        if g.returncode != 0:
            raise Failure(f"xpe gen failed: {open(os.path.join(self.work, 'gen.out')).read()[-1500:]}")
        if h.get("restart_per_run"):
            cycles = self.stop_forwarder(h)
        extra = {}
        if watcher:
            try:
                watcher.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.stop(watcher)
            text = open(os.path.join(self.work, "capture.out" if h["dut"] == "xpe-capture" else "scrape.out")).read()
            if h["dut"] == "xpe-capture":
                m = re.search(r"(\d+) frames written .* in ([\d.]+) s.*?(\d+) matched but missed.*?(\d+) queued after",
                              text)
                if not m:
                    raise Failure(f"xpe capture: {text[-1000:]}")
                written, secs_c, missed = int(m.group(1)), float(m.group(2)), int(m.group(3))
                extra = {"capture_fps": written / secs_c, "capture_missed_fps": missed / secs_c}
            else:
                n, p50, worst, size = text.split()[:4]
                extra = {"scrapes": int(n), "scrape_ms_p50": float(p50), "scrape_ms_max": float(worst),
                         "scrape_bytes": int(size), "scrape_every_s": self.args.scrape_every}
        secs = t1 - t0
        return (o1 - o0) / secs / 1e6, (d1 - d0) / secs / 1e6, cycles, extra

    # ------------------------------------------------------------------ the matrix
    def jobs(self, dut):
        """(scenario, sizes, flows) to measure for DUT. Every scenario runs with --flows flows;
        xpe's imposition also runs at 64 bytes with SPREAD flows, each to its own destination
        across 198.19.0.0/16, next to the 1M-route VRF with the same flows (there each flow
        ends on its own /32 host route), so the two rows differ only in the table."""
        a = self.args
        if dut == "kernel":
            return [("impose", a.sizes, a.flows)] if "impose" in a.scenarios else []
        out = [(s, a.sizes, a.flows) for s in a.scenarios if s in ("swap", "impose", "dispose")]
        if dut in ("xpe", *FAST) and "impose-1m" in a.scenarios:
            out += [("impose", [64], SPREAD), ("impose-1m", [64], SPREAD)]
        return out

    def run(self):
        a = self.args
        self.topology()
        self.sink = None
        # Scenario by scenario, every DUT in turn: the rows a ratio compares are measured
        # minutes apart, not half an hour (the machine drifts by more than the gains measured).
        order = {s: i for i, s in enumerate(SCENARIOS)}
        jobs = [(dut, job) for dut in a.duts for job in self.jobs(dut)]
        jobs.sort(key=lambda j: order.get(j[1][0].removesuffix("-1m"), len(order)))
        if not a.interleave:
            for dut, (scenario, sizes, flows) in jobs:
                got = self.measure(dut, scenario, sizes, flows, a.runs, verify=True)
                for (size, placement), (runs, sample) in got.items():
                    self.record(dut, scenario, size, placement, flows, runs, sample)
            return
        # --interleave: round by round, one run of every DUT of a scenario in turn.
        groups = {}
        for dut, (scenario, sizes, flows) in jobs:
            groups.setdefault((scenario, tuple(sizes), flows), []).append(dut)
        for (scenario, sizes, flows), duts in groups.items():
            got = {dut: {} for dut in duts}
            for r in range(a.runs):
                log(f"== round {r + 1} of {a.runs}: {scenario}, {flows} flows")
                for dut in duts:
                    if r > 0 and not got[dut]:
                        continue  # it failed in the first round; the note says why
                    for key, (runs, sample) in self.measure(dut, scenario, sizes, flows, 1, verify=r == 0).items():
                        before = got[dut].get(key, ([], sample))
                        got[dut][key] = (before[0] + runs, before[1] or sample)
            for dut in duts:
                for (size, placement), (runs, sample) in got[dut].items():
                    self.record(dut, scenario, size, placement, flows, runs, sample, interleaved=True)

    def measure(self, dut, scenario, sizes, flows, n, verify):
        """Starts DUT, checks a sample of its output (if VERIFY), measures N runs per size and
        placement, and stops it: {(size, placement): (runs, sample)}, empty if it failed."""
        a = self.args
        out = {}
        h = None
        try:
            log(f"== {dut} {scenario}, {flows} flows")
            h = self.start_dut(dut, scenario)
            for size in sizes:
                sample = None
                if verify:
                    if h.get("restart_per_run"):
                        self.start_forwarder(h)
                    try:
                        self.place("P0s1", dut in IN_KERNEL)
                        sample = self.verify(dut, "kernel" if dut == "kernel" else scenario, size)
                    finally:
                        if h.get("restart_per_run"):
                            self.stop_forwarder(h)
                    log(f"   {size} B output verified: {sample}")
                self.sink = self.spawn(a.xpe, "sink", "--dev", self.dev["s0"], ns="sink",
                                       out=os.path.join(self.work, "sink.out"))
                time.sleep(1.0)
                for placement in a.placements:
                    self.place(placement, dut in IN_KERNEL)
                    out[(size, placement)] = ([self.run_once(h, size, flows) for _ in range(n)], sample)
                self.stop(self.sink)
                self.sink = None
        except (Failure, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
            # One DUT's trouble (a missing tool, a bad sample, a crash) is reported and
            # the others are still measured.
            log(f"   not measured: {e}")
            self.notes.append(f"{dut} {scenario}: {e}")
            out = {}
        finally:
            if self.sink:
                self.stop(self.sink)
                self.sink = None
            if h:
                self.stop_dut(h)
        return out

    def record(self, dut, scenario, size, placement, flows, runs, sample, interleaved=False):
        offered = [r[0] for r in runs]
        delivered = [r[1] for r in runs]
        cycles = [r[2] for r in runs if r[2] is not None]
        row = {
            "dut": dut,
            "scenario": scenario,
            "frame_size": size,
            "placement": placement,
            "offered_mpps": round(statistics.median(offered), 3),
            "delivered_mpps": round(statistics.median(delivered), 3),
            "delivered_min": round(min(delivered), 3),
            "delivered_max": round(max(delivered), 3),
            "cycles_per_packet": round(statistics.median(cycles), 1) if cycles else None,
            "flows": flows,
            "runs": len(runs),
            # Offered and delivered Mpps of each run, in order (with --interleave, run i of
            # every DUT of the scenario was measured in the same round).
            "per_run": [[round(o, 3), round(d, 3)] for o, d in zip(offered, delivered)],
            "interleaved": interleaved,
            "verified": sample,
        }
        for key in sorted({k for r in runs for k in r[3]}):
            vals = [r[3][key] for r in runs if key in r[3]]
            row[key] = round(statistics.median(vals), 2)
        if dut == "kernel":
            row["note"] = "plain IPv4 forwarding (this kernel has no MPLS)"
        self.rows.append(row)
        extra = "".join(f", {k} {row[k]}" for k in sorted(row) if k.startswith(("capture_", "scrape")))
        log(f"   {placement} {size} B: offered {row['offered_mpps']} delivered {row['delivered_mpps']} "
            f"({row['delivered_min']}-{row['delivered_max']}) Mpps, cycles/pkt {row['cycles_per_packet']}{extra}")


def machine():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} CPUs", platform.release()


def table(rows):
    out = ["| DUT | scenario | frame | flows | placement | offered Mpps | delivered Mpps (min-max) | cycles/pkt |",
           "|---|---|---|---|---|---|---|---|"]
    # Measured scenario by scenario; listed DUT by DUT.
    for r in sorted(rows, key=lambda r: DUTS.index(r["dut"]) if r["dut"] in DUTS else len(DUTS)):
        cyc = "-" if r["cycles_per_packet"] is None else f"{r['cycles_per_packet']:.0f}"
        out.append(f"| {r['dut']} | {r['scenario']} | {r['frame_size']} | {r['flows']} | {r['placement']} | {r['offered_mpps']:.3f} | "
                   f"{r['delivered_mpps']:.3f} ({r['delivered_min']:.3f}-{r['delivered_max']:.3f}) | {cyc} |")
    inter = [r for r in rows if r.get("interleaved")]
    if inter:
        out += ["", "Run by run (--interleave: run i of every DUT of a scenario in round i), delivered Mpps "
                "(offered):", "", "| DUT | scenario | frame | flows | placement | runs |", "|---|---|---|---|---|---|"]
        for r in inter:
            runs = " ".join(f"{d:.3f} ({o:.3f})" for o, d in r["per_run"])
            out.append(f"| {r['dut']} | {r['scenario']} | {r['frame_size']} | {r['flows']} | {r['placement']} | {runs} |")
    return "\n".join(out)


def ratios(rows):
    """The issue's goals, from rows of this run."""
    def get(dut, sc, size, pl, flows=None):
        for r in rows:
            if (r["dut"], r["scenario"], r["frame_size"], r["placement"]) == (dut, sc, size, pl) and \
                    (flows is None or r["flows"] == flows) and (flows is not None or r["flows"] != SPREAD):
                return r
        return None
    lines = []
    for sc in ("swap", "impose", "dispose"):
        for size in (64, 512, 1500):
            x, o, f = get("xpe", sc, size, "P0s1"), get("ovs-afxdp", sc, size, "P0s1"), get("forwarder", sc, size, "P0s1")
            if f and o:
                lines.append(f"{sc} {size} B P0s1: forwarder {f['delivered_mpps'] / max(o['delivered_mpps'], 1e-9):.2f}x "
                             f"OVS delivered (goal >= 1.3)")
            if x and o:
                cyc = ""
                if x["cycles_per_packet"] and o["cycles_per_packet"]:
                    cyc = f", cycles {x['cycles_per_packet'] / o['cycles_per_packet']:.2f}x OVS (goal <= 0.6)"
                lines.append(f"{sc} {size} B P0s1: xpe {x['delivered_mpps'] / max(o['delivered_mpps'], 1e-9):.2f}x "
                             f"OVS delivered (goal >= 1.25){cyc}")
            if x and f:
                lines.append(f"{sc} {size} B P0s1: xpe {x['delivered_mpps'] / max(f['delivered_mpps'], 1e-9):.1%} "
                             f"of the forwarder (goal >= 95%)")
    def rounds(a, b, pct):
        """With --interleave: the median of the per-round ratios a/b, and their range."""
        if not (a.get("interleaved") and b.get("interleaved")) or len(a["per_run"]) != len(b["per_run"]):
            return ""
        q = sorted(x[1] / max(y[1], 1e-9) for x, y in zip(a["per_run"], b["per_run"]))
        f = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:.2f}x")
        return f"; per round {f(statistics.median(q))} ({f(q[0])}-{f(q[-1])}, {len(q)} rounds)"
    for sc in ("swap", "impose", "dispose"):
        x, o, r = get("xpe-xdp", sc, 64, "P0s1"), get("ovs-afxdp", sc, 64, "P0s1"), get("xdp-redirect", sc, 64, "P0s1")
        if x and o:
            lines.append(f"{sc} 64 B P0s1: xpe-xdp {x['delivered_mpps'] / max(o['delivered_mpps'], 1e-9):.2f}x "
                         f"OVS delivered{rounds(x, o, False)} (issue 17 goal >= 3)")
        rr, b = get("xdp-redirect-read", sc, 64, "P0s1"), get("xpe-xdp-base", sc, 64, "P0s1")
        reading, before = "xdp-redirect reading the Ethernet destination", "the fast path as built before"
        for left, a, right, c, goal in (("xpe-xdp", x, "xdp-redirect", r, " (issue 17 goal >= 80%)"),
                                        ("xpe-xdp", x, reading, rr, ""), (reading, rr, "xdp-redirect", r, ""),
                                        ("xpe-xdp", x, before, b, ""), (before, b, "xdp-redirect", r, "")):
            if a and c:
                lines.append(f"{sc} 64 B P0s1: {left} {a['delivered_mpps'] / max(c['delivered_mpps'], 1e-9):.1%} "
                             f"of {right}{rounds(a, c, True)}{goal}")
    for sc in ("swap", "impose", "dispose"):
        x, b = get("xpe", sc, 64, "P0s1"), get("xpe-base", sc, 64, "P0s1")
        if x and b:
            lines.append(f"{sc} 64 B P0s1: xpe {x['delivered_mpps'] / max(b['delivered_mpps'], 1e-9):.1%} of the "
                         f"build before (issue 18 goal: within 1%, no capture running)")
        c = get("xpe-capture", sc, 64, "P0s1")
        if x and c:
            lines.append(f"{sc} 64 B P0s1: capturing every sent frame, xpe delivers "
                         f"{c['delivered_mpps'] / max(x['delivered_mpps'], 1e-9):.1%} of itself without; "
                         f"{c.get('capture_fps', 0):,.0f} frames/s written, {c.get('capture_missed_fps', 0):,.0f}/s "
                         f"missed (issue 18 aim >= 100k/s written)")
        m = get("xpe-scrape", sc, 64, "P0s1")
        if x and m:
            lines.append(f"{sc} 64 B P0s1: scraped every {m.get('scrape_every_s', 0.1)} s, xpe delivers "
                         f"{m['delivered_mpps'] / max(x['delivered_mpps'], 1e-9):.1%} of itself unscraped; "
                         f"scrape p50 {m.get('scrape_ms_p50', 0)} ms (issue 18 goal: no visible dip)")
    for pl in ("P0", "P0s1"):
        for dut, goal in (("xpe", "goal >= 95%"), ("xpe-xdp", "issue 17 goal >= 90%")):
            a, b = get(dut, "impose", 64, pl, SPREAD), get(dut, "impose-1m", 64, pl, SPREAD)
            if a and b:
                lines.append(f"impose 64 B {pl}: {dut} with the 1M-route VRF delivers "
                             f"{b['delivered_mpps'] / max(a['delivered_mpps'], 1e-9):.1%} of the 10-route VRF ({goal})")
    return lines


def plot(rows, png, title):
    """Mpps per DUT and frame size (delivered, P0s1 and P0), gnuplot from Debian."""
    data = os.path.join(os.path.dirname(png) or ".", ".plot.dat")
    duts = [d for d in DUTS if any(r["dut"] == d for r in rows)]
    cols = [(s, p) for s in SCENARIOS for p in PLACEMENTS
            if any(r["scenario"] == s and r["placement"] == p for r in rows)]
    with open(data, "w") as f:
        f.write("label " + " ".join(f"{s}/{p}" for s, p in cols) + "\n")
        for size in (64, 512, 1500):
            for d in duts:
                vals = []
                for s, p in cols:
                    r = [x for x in rows if (x["dut"], x["scenario"], x["frame_size"], x["placement"]) == (d, s, size, p)
                         and (x["flows"] == SPREAD) == (s == "impose-1m")]
                    vals.append(f"{r[0]['delivered_mpps']:.3f}" if r else "NaN")
                if any(v != "NaN" for v in vals):
                    f.write(f'"{d} {size}B" ' + " ".join(vals) + "\n")
    script = f'''
set terminal pngcairo size 1600,800 font ",10"
set output "{png}"
set title "{title}" noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "delivered Mpps (median)"
set xtics rotate by -45 noenhanced
set key outside right top noenhanced
set grid ytics
set yrange [0:*]
plot for [i=2:{len(cols) + 1}] "{data}" using i:xtic(1) title columnheader(i)
'''
    r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    os.unlink(data)
    if r.returncode != 0:
        raise Failure(f"gnuplot: {r.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xpe", required=True)
    ap.add_argument("--fwd", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--flows", type=int, default=256,
                    help="flows of every scenario (default 256: they fit OVS's exact-match cache)")
    ap.add_argument("--xpe-base", help="the xpe binary the xpe-base DUT runs (an earlier build)")
    ap.add_argument("--scrape-every", type=float, default=0.1,
                    help="seconds between the xpe-scrape DUT's scrapes (default 0.1)")
    ap.add_argument("--duts", default=",".join(DEFAULT_DUTS))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--sizes", default="64,512,1500")
    ap.add_argument("--placements", default=",".join(PLACEMENTS))
    ap.add_argument("--out", default="benches/results")
    ap.add_argument("--rate", type=float,
                    help="offer at most this many Mpps (xpe gen --rate; default: as fast as the generator goes)")
    ap.add_argument("--interleave", action="store_true",
                    help="measure the DUTs of a scenario round by round (one run each, in turn) "
                         "instead of all runs of one DUT, then the next; ratios then also per round")
    a = ap.parse_args()

    def pick(text, allowed, what):
        vals = [v for v in text.split(",") if v]
        bad = [v for v in vals if v not in allowed]
        if bad or not vals:
            ap.error(f"--{what}: {', '.join(bad) or 'empty'}: choose from {', '.join(allowed)}")
        return vals
    a.duts = pick(a.duts, DUTS, "duts")
    for dut in ("xpe-base", "xpe-xdp-base"):
        if dut in a.duts and not a.xpe_base:
            ap.error(f"the {dut} DUT needs --xpe-base PATH")
    a.scenarios = pick(a.scenarios, SCENARIOS, "scenarios")
    a.placements = pick(a.placements, PLACEMENTS, "placements")
    a.sizes = [int(s) for s in pick(a.sizes, ["64", "512", "1500"], "sizes")]
    if a.runs < 1 or a.seconds <= 0 or a.warmup < 0:
        ap.error("--runs >= 1, --seconds > 0 and --warmup >= 0")

    h = Harness(a)

    def on_signal(sig, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        h.run()
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        h.cleanup()
        return 130
    finally:
        h.cleanup()

    cpu, kernel = machine()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, "pps")
    with open(base + ".json", "w") as f:
        json.dump({"machine": cpu, "kernel": kernel, "date": stamp, "generator": "xpe gen on CPU0",
                   "runs": a.runs, "seconds": a.seconds, "flows": a.flows, "rows": h.rows, "notes": h.notes},
                  f, indent=1)
    md = table(h.rows)
    goals = ratios(h.rows)
    with open(base + ".md", "w") as f:
        f.write(f"# pps harness, {stamp}\n\n{cpu}; kernel {kernel}; generator xpe gen on CPU0, DUT on CPU1; "
                f"{a.runs} runs of {a.seconds:g} s after {a.warmup:g} s warm-up; {a.flows} flows"
                f"{'; DUTs interleaved run by run' if a.interleave else ''}\n\n{md}\n\n")
        f.write("\n".join(f"- {g}" for g in goals) + "\n")
        if h.notes:
            f.write("\nNot measured:\n" + "\n".join(f"- {n}" for n in h.notes) + "\n")
    png = base + ".png" if h.rows else None
    try:
        if not png:
            raise Failure("no rows: no plot")
        plot(h.rows, png, f"delivered Mpps: gen -> DUT -> sink on veth; {cpu}; kernel {kernel}; "
                          f"P0s1 = DUT core saturated, P0 = sink on the generator core; {stamp}")
    except Failure as e:
        log(str(e))
        png = None
    print(md)
    print()
    for g in goals:
        print(g)
    for n in h.notes:
        print(f"not measured: {n}")
    print(f"\nwrote {base}.json, {base}.md" + (f", {png}" if png else ""))
    return 0 if h.rows else 1


if __name__ == "__main__":
    sys.exit(main())
