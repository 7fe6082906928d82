#!/usr/bin/python3
"""Two xpe workers on two-queue veths: what two cores can show (benches/README.md, issue 16).

    usage: scripts/bench_two_workers.py --xpe target/release/xpe      (root)

The topology of scripts/bench_pps.py (gen -> DUT -> sink namespaces, named xbp<pid>*, removed
on exit), with two queues on every veth. veth picks the receive queue of an XDP-sent frame by
the sending CPU, so a queue is fed only by a generator on its CPU. Four rows, LSR swap, 64 B,
the sink's receive work on the transmitting core (P0s1), medians of 3 runs of 3 s: one worker
or two (`--cores 1` / `--cores 0,1`), one generator (CPU0) or two (CPU0 and CPU1).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_pps as b  # noqa: E402

class H(b.Harness):
    def runtime(self, sock):
        out = subprocess.run([self.args.xpe, "show", "runtime", "--json", "--socket", sock],
                             capture_output=True, text=True).stdout
        return json.loads(out)

    def trial(self, cores, gen_cpus, seconds=3.0, warm=1.5):
        cfg = self.xpe_config("swap")
        sock = os.path.join(self.work, f"xpe{cores}.sock")
        log = os.path.join(self.work, "xpe.log")
        p = self.spawn(self.args.xpe, "run", cfg, "--cores", cores, "--socket", sock, ns="dut", out=log)
        deadline = time.time() + 60
        while subprocess.run([self.args.xpe, "show", "runtime", "--socket", sock], capture_output=True).returncode:
            if p.poll() is not None or time.time() > deadline:
                raise b.Failure(open(log).read()[-1500:])
            time.sleep(0.2)
        sink = self.spawn(self.args.xpe, "sink", "--dev", self.dev["s0"], ns="sink")
        time.sleep(1)
        res = []
        for _ in range(3):
            gens = [self.spawn(self.args.xpe, "gen", *self.gen_args("swap", 64, 256), "--duration", warm + seconds + 1,
                               ns="gen", cpu=c) for c in gen_cpus]
            time.sleep(warm)
            r0, o0, d0, t0 = self.runtime(sock), self.offered(), self.delivered(), time.time()
            time.sleep(seconds)
            r1, o1, d1, t1 = self.runtime(sock), self.offered(), self.delivered(), time.time()
            for g in gens:
                g.wait(timeout=30)
            per = []
            for w0, w1 in zip(r0["workers"], r1["workers"]):
                per.append(round((w1["packets"] - w0["packets"]) / (t1 - t0) / 1e6, 3))
            res.append(((o1 - o0) / (t1 - t0) / 1e6, (d1 - d0) / (t1 - t0) / 1e6, per))
        self.stop(sink)
        self.stop(p)
        res.sort(key=lambda r: r[1])
        o, dl, per = res[1]
        print(f"cores {cores} gens on {gen_cpus}: offered {o:.3f} delivered {dl:.3f} Mpps "
              f"(runs {[round(r[1], 3) for r in res]}), per-worker received {per}", flush=True)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--xpe", required=True)
    h = H(ap.parse_args())

    def on_signal(_sig, _frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        h.topology(queues=2)
        h.place("P0s1", False)
        for cores, gens in (("1", [0]), ("0,1", [0]), ("0,1", [0, 1]), ("1", [0, 1])):
            try:
                h.trial(cores, gens)
            except b.Failure as e:
                print(f"cores {cores} gens {gens}: failed: {e}", flush=True)
    finally:
        h.cleanup()

if __name__ == "__main__":
    main()
