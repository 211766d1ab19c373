#!/usr/bin/env python3
"""The markdown table of benches/s3.sh from its results.jsonl.

    python3 benches/s3_table.py RESULTS.jsonl ROUNDS "CONFIG ..."

Each line of RESULTS is {"config", "workload", "round", "result": <tusgate bench --json> | null}.
Cells are medians over the rounds; a second table gives the min-max range.
"""
import json
import statistics
import sys

results, rounds, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
runs = [json.loads(line) for line in open(results) if line.strip()]
present = {r["config"] for r in runs}
configs = [c for c in configs if c in present]

NAMES = {"tusgate1": "**tusgate ×1**", "tusgate1u": "tusgate ×1, unsigned", "tusgate2": "tusgate ×2",
         "tusgate3": "tusgate ×3",
         "tusgate3r": "tusgate ×3, per request", "tusd": "tusd 2.10", "tusd_nohash": "tusd, no hashes"}
LABELS = {"par8": "concurrent uploads", "one8": "8 uploads at once, one PATCH each",
          "one32": "32 uploads at once, one PATCH each", "small": "small uploads"}


def srv(key):
    return lambda r: (r.get("server") or {}).get(key)


def backend(key):
    return lambda r: (r.get("backend") or {}).get(key)


def both_per_gib(r):
    a, b = srv("cpu_s_per_gib")(r), backend("cpu_s_per_gib")(r)
    return a + b if a is not None and b is not None else None


def instance_peak(r):
    procs = (r.get("server") or {}).get("processes") or []
    return max((p["peak_rss_mib"] for p in procs), default=None)


def per_upload_rss(r):
    s = r.get("server") or {}
    if "peak_rss_mib" not in s or not r.get("concurrency"):
        return None
    return (s["peak_rss_mib"] - s.get("rss_before_mib", 0)) / r["concurrency"]


def others_load(r):
    """Cores busy with work other than this run's server, S3 server and generator."""
    m, s, b, c = r.get("machine"), r.get("server") or {}, r.get("backend") or {}, r.get("client") or {}
    if not m or not r.get("duration_s"):
        return None
    ours = (s.get("cpu_s") or 0) + (b.get("cpu_s") or 0) + (c.get("cpu_s") or 0)
    return max(0.0, m["busy_cores"] - ours / r["duration_s"])


# (workload, metric label, extractor, "rate" if higher is better)
ROWS = [
    ("par8", "MiB/s", lambda r: r["mib_per_s"], "rate"),
    ("par8", "server CPU s/GiB (all instances)", srv("cpu_s_per_gib"), ""),
    ("par8", "SeaweedFS CPU s/GiB", backend("cpu_s_per_gib"), ""),
    ("par8", "server + SeaweedFS CPU s/GiB", both_per_gib, ""),
    ("par8", "peak RSS MiB, per instance (max)", instance_peak, ""),
    ("par8", "peak RSS MiB, all instances", srv("peak_rss_mib"), ""),
    ("par8", "RSS MiB per concurrent upload", per_upload_rss, ""),
    ("one8", "MiB/s", lambda r: r["mib_per_s"], "rate"),
    ("one8", "server CPU s/GiB (all instances)", srv("cpu_s_per_gib"), ""),
    ("one8", "peak RSS MiB, per instance (max)", instance_peak, ""),
    ("one8", "RSS MiB per concurrent upload", per_upload_rss, ""),
    ("one32", "MiB/s", lambda r: r["mib_per_s"], "rate"),
    ("one32", "server CPU s/GiB (all instances)", srv("cpu_s_per_gib"), ""),
    ("one32", "SeaweedFS CPU s/GiB", backend("cpu_s_per_gib"), ""),
    ("one32", "peak RSS MiB, per instance (max)", instance_peak, ""),
    ("one32", "peak RSS MiB, all instances", srv("peak_rss_mib"), ""),
    ("one32", "RSS MiB per concurrent upload", per_upload_rss, ""),
    ("small", "uploads/s", lambda r: r.get("uploads_per_s"), "rate"),
    ("small", "p99 ms", lambda r: (r.get("latency_ms") or {}).get("p99"), ""),
    ("small", "server CPU ms/upload (all instances)", srv("cpu_ms_per_upload"), ""),
    ("small", "SeaweedFS CPU ms/upload", backend("cpu_ms_per_upload"), ""),
    ("all", "other load on the machine, cores", others_load, ""),
]


def values(config, workload, metric):
    out = []
    for r in runs:
        if r["config"] == config and (workload == "all" or r["workload"] == workload) and r["result"]:
            v = metric(r["result"])
            if v is not None:
                out.append(v)
    return out


def errors(config, workload):
    return sum(1 for r in runs if r["config"] == config and r["workload"] == workload
               and (r["result"] is None or not r["result"]["ok"]))


def med(config, workload, metric):
    v = values(config, workload, metric)
    return statistics.median(v) if v else None


def fmt_bytes(b):
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if b >= unit:
            return f"{b / unit:g} {name}"
    return f"{b} B"


def shape(workload):
    for r in runs:
        x = r["result"]
        if r["workload"] == workload and x and x.get("size"):
            text = f"{x.get('count') or 1} × {fmt_bytes(x['size'])}"
            if x.get("chunk") and x["chunk"] < x["size"]:
                text += f" in {fmt_bytes(x['chunk'])} PATCHes"
            return text + f", c={x['concurrency']}"
    return ""


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a is not None and b else "—"


pairs = [(a, b, f"{NAMES[a].strip('*')} ÷ {NAMES[b].strip('*')}") for a, b in
         [("tusgate1", "tusd"), ("tusgate1", "tusd_nohash"), ("tusgate1u", "tusd"), ("tusgate1u", "tusgate1"),
          ("tusgate2", "tusgate1"),
          ("tusgate3", "tusgate1"), ("tusgate3r", "tusgate3")] if a in configs and b in configs]
header = ["workload", "metric"] + [NAMES[c] for c in configs] + [p[2] for p in pairs]
lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
spread = ["| workload | metric | " + " | ".join(NAMES[c] for c in configs) + " |",
          "|---|---|" + "---|" * len(configs)]
for workload, label, metric, _ in ROWS:
    if not any(r["workload"] == workload or workload == "all" for r in runs):
        continue
    cells, ranges = [], []
    for c in configs:
        v = med(c, workload, metric)
        vs = values(c, workload, metric)
        cell = fmt(v)
        if v is not None and workload != "all" and len(vs) < rounds:
            cell += f" (n={len(vs)})"
        if workload != "all" and errors(c, workload):
            cell += f" ⚠{errors(c, workload)} err"
        cells.append(cell)
        ranges.append(f"{fmt(min(vs))}–{fmt(max(vs))}" if vs else "—")
    ratios = [ratio(med(a, workload, metric), med(b, workload, metric)) for a, b, _ in pairs]
    name = "every run" if workload == "all" else f"{LABELS[workload]} ({shape(workload)})"
    lines.append("| " + " | ".join([name, label] + cells + ratios) + " |")
    spread.append("| " + " | ".join([LABELS.get(workload, "every run"), label] + ranges) + " |")

note = (f"Median of {rounds} interleaved rounds (n= marks fewer). Ratios are the first "
        "configuration's value over the second's: above 1 is better for rates, below 1 for times, "
        "CPU and memory. 'server CPU' is the sum over all instances of the configuration; "
        "'per instance (max)' is the largest VmHWM among them; 'RSS per concurrent upload' is "
        "(peak − RSS before the run), summed over the instances, ÷ the uploads in flight. "
        "SeaweedFS (one `weed mini`: master, volume, filer and S3 in one process) runs on the "
        "same 2 cores; 'other load' is the machine's busy cores minus this run's server, "
        "SeaweedFS and load generator (other users' work).")
print("\n".join(lines) + "\n\n" + note + "\n\nRange (min–max) per cell:\n\n" + "\n".join(spread))
