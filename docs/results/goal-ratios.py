#!/usr/bin/env python3
"""Goal ratios (--paired: median [min-max] of per-round ratios, named contenders only) (waitless / named contender, same-run medians) from results.json files.
usage: goal-ratios.py results.json [more.json ...]  -> one markdown column per file."""
import json, sys
GOALS = [
 ("stack ÷ Mutex<Vec>", "stack/push-pop-pairs", "waitless", ["Mutex<Vec>"]),
 ("default epoch::pin ÷ crossbeam pin", "epoch/pin-load", "waitless epoch::pin (default)", ["crossbeam_epoch::pin"]),
 ("Collector::pin ÷ crossbeam pin", "epoch/pin-load", "waitless Collector::pin", ["crossbeam_epoch::pin"]),
 ("RCU read-with-writer ÷ crossbeam pin+load", "rcu/read-with-writer", "waitless Rcu::read", ["crossbeam_epoch pin+load"]),
 ("RCU read-only ÷ arc-swap", "rcu/read-only", "waitless Rcu::read", ["arc-swap load"]),
 ("SPSC ÷ rtrb", "channel/spsc", "waitless spsc", ["rtrb"]),
 ("SPSC batch 32 ÷ rtrb batch 32", "channel/spsc-batch32", "waitless spsc (batch 32)", ["rtrb (batch 32)"]),
 ("OptimizedChannel ÷ crossbeam 1P1C", "channel/mpmc-1p1c", "waitless OptimizedChannel", ["crossbeam-channel"]),
 ("OptimizedChannel ÷ crossbeam 2P2C", "channel/mpmc-2p2c", "waitless OptimizedChannel", ["crossbeam-channel"]),
 ("OptimizedChannel ÷ crossbeam 4P4C", "channel/mpmc-4p4c", "waitless OptimizedChannel", ["crossbeam-channel"]),
 ("OptimizedChannel ÷ crossbeam 8P8C", "channel/mpmc-8p8c", "waitless OptimizedChannel", ["crossbeam-channel"]),
 ("bounded try_* ÷ crossbeam 1P1C", "channel/mpmc-1p1c", "waitless bounded (try_*)", ["crossbeam-channel"]),
 ("bounded try_* ÷ crossbeam 2P2C", "channel/mpmc-2p2c", "waitless bounded (try_*)", ["crossbeam-channel"]),
 ("blocking round trip ÷ crossbeam", "channel/blocking-roundtrip", "waitless bounded", ["crossbeam-channel"]),
 ("queue pairs ÷ ArrayQueue", "queue/pairs", "waitless WaitFreeQueue", ["crossbeam ArrayQueue"]),
 ("queue pairs ÷ best peer", "queue/pairs", "waitless WaitFreeQueue", "P"),
 ("B-tree lookups ÷ scc", "btree/read-heavy", "waitless LockFreeBTree", ["scc TreeIndex"]),
 ("B-tree lookups ÷ SkipMap", "btree/read-heavy", "waitless LockFreeBTree", ["crossbeam SkipMap"]),
 ("B-tree scan ÷ scc", "btree/scan", "waitless LockFreeBTree", ["scc TreeIndex"]),
 ("B-tree insert-heavy ÷ scc", "btree/insert-heavy", "waitless LockFreeBTree", ["scc TreeIndex"]),
 ("map read-heavy ÷ best peer", "map/read-heavy", "waitless", "P"),
 ("map insert-heavy ÷ best peer", "map/insert-heavy", "waitless", "P"),
 ("map insert-heavy ÷ best lock", "map/insert-heavy", "waitless", "M"),
 ("map grow-from-empty ÷ best peer", "map/grow-from-empty", "waitless", "P"),
]
def med(c):
    return {m['threads']: m['median_ops_per_sec'] for m in c['measurements'] if m.get('median_ops_per_sec')}
PAIRED = False
def runs(c):
    return {m['threads']: [r['ops_per_sec'] for r in m.get('runs', [])] for m in c['measurements']}
def paired(mine, ref):
    n = min(len(mine), len(ref))
    if n < 3: return None
    rs = sorted(mine[i] / ref[i] for i in range(n))
    m = rs[n // 2] if n % 2 else (rs[n // 2 - 1] + rs[n // 2]) / 2
    return f"{m:.2f} [{rs[0]:.2f}-{rs[-1]:.2f}]"
def ratios(d, wl, me, other):
    w = next((w for w in d['workloads'] if w['workload'] == wl), None)
    if not w: return None
    cs = {c['name']: c for c in w['contenders']}
    if me not in cs: return None
    mine = med(cs[me]); out = []
    for t in sorted(mine):
        if isinstance(other, str):
            vals = [med(c).get(t) for c in w['contenders'] if c['role'][0] == other]
            vals = [v for v in vals if v]
            ref = max(vals) if vals else None
        else:
            ref = med(cs[other[0]]).get(t) if other[0] in cs else None
        if PAIRED and ref and not isinstance(other, str):
            p = paired(runs(cs[me]).get(t, []), runs(cs[other[0]]).get(t, []))
            out.append(p or "—"); continue
        out.append(f"{mine[t]/ref:.2f}" if ref else "—")
    return " / ".join(out)
files = sys.argv[1:]
if files and files[0] == "--paired":
    PAIRED = True; files = files[1:]
ds = [json.load(open(f)) for f in files]
print("| goal ratio | " + " | ".join(files) + " |")
print("|---|" + "---|" * len(files))
for name, wl, me, other in GOALS:
    cols = [ratios(d, wl, me, other) or "—" for d in ds]
    if all(c == "—" for c in cols): continue
    print(f"| {name} | " + " | ".join(cols) + " |")
