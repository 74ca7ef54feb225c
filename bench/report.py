#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Turn bench/run.sh's raw samples into bench/results/latest.json and its section of BENCHMARKS.md.

  report.py --raw RAW.jsonl --json latest.json --md BENCHMARKS.md   (what run.sh does)
  report.py --json latest.json --md BENCHMARKS.md                   (regenerate the page only)

Python standard library only.
"""

import argparse
import json
import statistics
import sys

RATE_TOL = 0.02          # achieved / configured within 1 +- 2 %
OVERHEAD_MIN = 0.98      # unlimited throughput with netbumpd + rules / without
PAYLOAD_V4 = 1448        # TCP payload of a 1514-byte frame (20 IP + 20 TCP + 12 timestamps)
FRAME = 1514


def burst_bytes(rate_bps, mtu):
    """src/netbumpd/htb-params.c htb_params(): about 10 ms at the rate, at least 4 full frames,
    a whole 64 KiB GSO packet from 50 Mbit/s on."""
    b = max(rate_bps // 8 // 100, 4 * (mtu + 14))
    if rate_bps >= 50_000_000:
        b = max(b, 65536 + mtu + 14)
    return b


def percentile(values, p):
    v = sorted(values)
    if not v:
        return None
    k = (len(v) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def rnd(x, n=4):
    return None if x is None else round(x, n)


def slope(points):
    """Least-squares slope of bytes over time, in bit/s; None with fewer than 3 points."""
    if len(points) < 3:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mb = sum(b for _, b in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 8 * sum((t - mt) * (b - mb) for t, b in points) / var if var > 0 else None


def derive_rate(r):
    rate = r["rate_bps"]
    window = r["t2"] - r["t1"]
    two_point = (r["bytes_t2"] - r["bytes_t1"]) * 8 / window
    # HTB's byte counter rises in steps of whole packets, up to a 68 kB GSO packet: at 1 mbit one
    # step is 11% of a 4.7 s window, so two samples land up to that far off. The slope fitted
    # through a sample every 0.1 s reads the rate the counter rises at (within ~1.7% for 95% of
    # step phases at 1 mbit, in simulation).
    fitted = slope(r.get("series") or [])
    achieved = fitted if fitted is not None else two_point
    ratio = achieved / rate
    burst = burst_bytes(rate, r["mtu"])
    fs_window = r["t1"] - r["t_prev"]
    fs_bytes = r["bytes_t1"] - r["bytes_base"]
    allowance = rate / 8 * fs_window + burst
    iperf = r.get("iperf") or {}
    goodput = iperf.get("goodput_bps")
    expected = rate * PAYLOAD_V4 / FRAME
    return {
        "rate": r["rate"],
        "rate_bps": rate,
        "direction": r["direction"],
        "flows": r["flows"],
        "family": r["family"],
        "window_s": rnd(window),
        "achieved_bps": round(achieved),
        "ratio": rnd(ratio),
        "estimator": "fit" if fitted is not None else "two samples",
        "n_samples": len(r.get("series") or []) or 2,
        "two_point_bps": round(two_point),
        "two_point_ratio": rnd(two_point / rate),
        "pass": abs(ratio - 1) <= RATE_TOL,
        "drops": r["drops"],
        "goodput_bps": goodput,
        "expected_goodput_bps": round(expected),
        "goodput_ratio": rnd(goodput / expected) if goodput is not None else None,
        "retransmits": iperf.get("retransmits"),
        "first_second": {
            "window_s": rnd(fs_window),
            "detect_latency_s": rnd(r["t_first"] - r["t_prev"]),
            "bytes": fs_bytes,
            "burst_bytes": burst,
            "allowance_bytes": round(allowance),
            "ratio": rnd(fs_bytes / allowance),
            "excess_bytes": max(0, round(fs_bytes - allowance)),
        },
        # times in seconds after the last sample that saw no traffic yet
        "samples": {**{k: rnd(r[k] - r["t_prev"], 6) for k in ("t_first", "t1", "t2")},
                    **{k: r[k] for k in ("bytes_base", "bytes_first", "bytes_t1", "bytes_t2")}},
    }


def derive_overhead(recs):
    out = {}
    for d in ("up", "down"):
        runs = {"a": [], "b": []}
        qdiscs = {"a": set(), "b": set()}
        for r in sorted(recs, key=lambda r: r["round"]):
            if r["direction"] != d:
                continue
            g = (r.get("iperf") or {}).get("goodput_bps")
            if g is not None:
                runs[r["variant"]].append(g)
            qdiscs[r["variant"]].add(r["root_qdisc"])
        if not runs["a"] or not runs["b"]:
            continue
        ma, mb = statistics.median(runs["a"]), statistics.median(runs["b"])
        pairs = [b / a for a, b in zip(runs["a"], runs["b"])]
        out[d] = {
            "a_no_netbumpd_bps": runs["a"],
            "b_netbumpd_rules_bps": runs["b"],
            "a_median_bps": round(ma),
            "b_median_bps": round(mb),
            "ratio": rnd(mb / ma),
            "pass": mb / ma >= OVERHEAD_MIN,
            "round_ratios": [rnd(p) for p in pairs],
            "round_ratio_median": rnd(statistics.median(pairs)),
            "a_spread": rnd((max(runs["a"]) - min(runs["a"])) / ma),
            "b_spread": rnd((max(runs["b"]) - min(runs["b"])) / mb),
            "root_qdisc": {k: sorted(v) for k, v in qdiscs.items()},
        }
    return out


def derive_control(recs):
    recs = sorted(recs, key=lambda r: r["round"])
    if not recs:
        return {}
    sets = [x for r in recs for x in r["set_s"]]
    lists = [x for r in recs for x in r["list_s"]]
    return {
        "rules": recs[0]["rules"],
        "rounds": len(recs),
        "set_total_s": [rnd(r["set_total_s"], 3) for r in recs],
        "set_total_median_s": rnd(statistics.median(r["set_total_s"] for r in recs), 3),
        "set_ms": {
            "median": rnd(statistics.median(sets) * 1e3, 2),
            "mean": rnd(statistics.mean(sets) * 1e3, 2),
            "p95": rnd(percentile(sets, 95) * 1e3, 2),
            "max": rnd(max(sets) * 1e3, 2),
            "first_median": rnd(statistics.median(r["set_s"][0] for r in recs) * 1e3, 2),
            "last_median": rnd(statistics.median(r["set_s"][-1] for r in recs) * 1e3, 2),
        },
        "list_json_ms_median": rnd(statistics.median(lists) * 1e3, 2),
        "daemon_ready_s_median": rnd(statistics.median(r["daemon_ready_s"] for r in recs), 3),
        "daemon_stop_s_median": rnd(statistics.median(r["daemon_stop_s"] for r in recs), 3),
        "classes": [[r["classes_up"], r["classes_down"]] for r in recs],
        "note": "wall time of one `netbumpctl set` process, start to exit (includes exec and connect)",
    }


def build(raw_path):
    recs = [json.loads(line) for line in open(raw_path) if line.strip()]
    meta = next((r for r in recs if r["kind"] == "meta"), {})
    meta = {k: v for k, v in meta.items() if k != "kind"}
    rate = [derive_rate(r) for r in recs if r["kind"] == "rate"]
    overhead = derive_overhead([r for r in recs if r["kind"] == "overhead"])
    control = derive_control([r for r in recs if r["kind"] == "control"])
    goals = {
        "rate_accuracy": {"goal": f"achieved/configured link-layer rate within 1 +- {RATE_TOL}",
                          "pass": bool(rate) and all(r["pass"] for r in rate),
                          "missed": [f'{r["rate"]} {r["direction"]}' for r in rate if not r["pass"]]},
        "overhead": {"goal": f"median unlimited throughput with/without netbumpd >= {OVERHEAD_MIN}",
                     "pass": len(overhead) == 2 and all(v["pass"] for v in overhead.values()),
                     "missed": [d for d, v in overhead.items() if not v["pass"]]},
    }
    return {"schema": 1, **meta, "goals": goals, "rate_accuracy": rate, "overhead": overhead,
            "control_plane": control}


def mbit(bps):
    return "–" if bps is None else f"{bps / 1e6:.3f}" if bps < 1e7 else f"{bps / 1e6:.1f}"


def gbit(bps):
    return f"{bps / 1e9:.2f}"


def ok(p):
    return "**pass**" if p else "**MISS**"


GSO_MAX_FRAME_BYTES = 68130   # a 64 KiB TCP GSO packet on the wire: 45 frames of 1514 bytes


def notes_for(res):
    """Facts that help read a miss, computed from the run's own numbers."""
    notes = []
    for r in res["rate_accuracy"]:
        window_bytes = r["rate_bps"] / 8 * r["window_s"]
        share = GSO_MAX_FRAME_BYTES / window_bytes
        if not r["pass"] and share > RATE_TOL and r.get("estimator") != "fit":
            notes.append(
                f"{r['rate']} {r['direction']}: HTB counts a GSO packet whole when it dequeues it, and "
                f"over a veth TCP sends GSO packets of up to 45 frames ({GSO_MAX_FRAME_BYTES} bytes on "
                f"the wire), {share:.1%} of the {window_bytes / 1e3:.0f} kB this "
                f"{r['window_s']:.1f} s window should hold: a single packet more or less in the "
                f"window moves the ratio by more than the {RATE_TOL:.0%} goal.")
        fs = r["first_second"]
        if fs["ratio"] > 1 and fs["excess_bytes"] <= GSO_MAX_FRAME_BYTES:
            notes.append(
                f"{r['rate']} {r['direction']}: the first second's {fs['excess_bytes']} bytes above "
                "rate × time + burst are less than one GSO packet: HTB sends a packet as soon as its "
                "tokens are not negative and lets them go below zero by the packet's size.")
        elif fs["ratio"] > 1:
            notes.append(f"{r['rate']} {r['direction']}: the first second exceeds rate × time + burst "
                         f"by {fs['excess_bytes']} bytes, more than one GSO packet.")
        g = r["goodput_ratio"]
        if g is not None and g < 1 - 2 * RATE_TOL and r["pass"]:
            notes.append(
                f"{r['rate']} {r['direction']}: the link-layer rate is right but goodput is "
                f"{g:.1%} of the expected payload rate: {r['retransmits']} TCP retransmissions "
                f"(and {r['drops']} drops at the class's queue) spend part of the rate on data sent "
                "twice.")
    for d, v in res["overhead"].items():
        spread = max(v["a_spread"], v["b_spread"])
        if not v["pass"] and spread > 1 - OVERHEAD_MIN:
            notes.append(
                f"overhead {d}: runs of one variant spread by up to {spread:.0%}, more than the "
                f"{1 - OVERHEAD_MIN:.0%} the goal allows; the per-round ratios "
                f"(median {v['round_ratio_median']:.3f}) say how consistent the difference is.")
    return notes


def render(res):
    L = []
    m = res.get("machine", {})
    git = res.get("git", {})
    meth = res.get("method", {})
    goals = res["goals"]
    L += [
        "## Rate accuracy, overhead, control plane (`bench/run.sh`)",
        "",
        "<!-- This section is generated by bench/report.py from bench/results/latest.json. -->",
        "",
        "How to run: `bench/run.sh` (root, Debian 12, after `ninja -C build`; about 4 minutes). It",
        "measures in two private network namespaces joined by a veth (the integration tests' harness,",
        "`tests/integration/lib.sh`), writes `bench/results/latest.json` and regenerates this section.",
        "",
        f"Run of {res.get('date', '?')}, commit `{git.get('commit', '?')[:12]}`"
        + (" (work tree differs from it)" if git.get("dirty_tree") else "")
        + f"; kernel {m.get('kernel', '?')}, {m.get('cpu', '?')}, {m.get('nproc', '?')} CPUs"
        + f" (load average {m.get('loadavg_start', '?')} at the start, {m.get('loadavg_end', '?')} at the end:"
        + " other work on the machine adds noise)"
        + f"; {res.get('iperf3', 'iperf3')}; TCP congestion control "
        + f"{res.get('tcp_congestion_control', {}).get('client_ns', '?')} (client), "
        + f"{res.get('tcp_congestion_control', {}).get('server_ns', '?')} (server);"
        + f" leaf qdisc {res.get('leaf_qdisc', '?')}; {res.get('duration_s', 0):.0f} s in all.",
        "",
        "### Goals",
        "",
        "| goal | result |",
        "|---|---|",
        f"| Rate accuracy: achieved link-layer rate within 2% of the configured rate (0.98–1.02), "
        f"every rate and direction | {ok(goals['rate_accuracy']['pass'])}"
        + (f" (missed: {', '.join(goals['rate_accuracy']['missed'])})" if goals['rate_accuracy']['missed'] else "")
        + " |",
        f"| Overhead: unlimited throughput with netbumpd and "
        f"{meth.get('overhead', {}).get('rules', '?')} rules ≥ 0.98 × without, both directions | "
        f"{ok(goals['overhead']['pass'])}"
        + (f" (missed: {', '.join(goals['overhead']['missed'])})" if goals['overhead']['missed'] else "")
        + " |",
        "",
    ]

    mr = meth.get("rate", {})
    L += [
        "### Rate accuracy",
        "",
        f"A cgroup gets `netbumpctl set cgroup:… RATE` (both directions); a client in it runs "
        f"`iperf3 -P 4 -O {mr.get('iperf3_O', 1)} -t {mr.get('iperf3_t', 5)}` over IPv4, upload, "
        "then download (`-R`). The achieved rate counts link-layer bytes as tc does: the slope "
        "(least squares) of the rule's class bytes (`netbumpctl list --json`, "
        "`up_stats.bytes`/`down_stats.bytes`) sampled every 0.1 s from "
        f"{mr.get('sample_start_s', 1)} s after the first byte to {mr.get('sample_end_s', 5.7)} s, "
        "each sample timed around its call"
        + (f" (below {mr['slow']['below_bps'] / 1e6:g} Mbit/s: `-t {mr['slow']['iperf3_t']}` and "
           f"until {mr['slow']['sample_end_s']} s, as a short window holds only a few hundred frames "
           "there and TCP's unevenness alone moves its rate by about 1%)" if mr.get("slow") else "")
        + ". The counter rises in whole packets, up to a 68 kB GSO "
        "packet, which at 1 mbit is 11% of the window: the difference of the first and last sample "
        "alone (shown as \"two samples\") can be off by that much either way, a fitted slope by "
        "about 1.7% at most in 95% of cases. Goodput is iperf3's receiver count "
        "(first second omitted), compared with RATE × 1448/1514, the payload share of a full frame. "
        "First second: the class's bytes from its first byte to the first sample, against "
        "RATE × that time + burst (burst = max(RATE/8/100, 4 × 1514, 65536 + 1514 from 50 Mbit/s) bytes, as `htb_params()` sets "
        "it); above 1.00 is overshoot.",
        "",
        "| rate | dir | achieved Mbit/s | achieved / rate | goal | two samples / rate "
        "| goodput Mbit/s | goodput / expected "
        "| retransmits | drops | first second: bytes / allowance |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["rate_accuracy"]:
        fs = r["first_second"]
        tp = r.get("two_point_ratio")
        L.append(
            f"| {r['rate']} | {r['direction']} | {mbit(r['achieved_bps'])} | {r['ratio']:.4f} | "
            f"{'pass' if r['pass'] else '**MISS**'} | {'–' if tp is None else format(tp, '.4f')} | "
            f"{mbit(r['goodput_bps'])} | "
            f"{'–' if r['goodput_ratio'] is None else format(r['goodput_ratio'], '.4f')} | "
            f"{'–' if r['retransmits'] is None else r['retransmits']} | {r['drops']} | "
            f"{fs['bytes']} / {fs['allowance_bytes']} = {fs['ratio']:.3f} |")
    L.append("")

    mo = meth.get("overhead", {})
    ov = res["overhead"]
    L += [
        "### Overhead on unlimited traffic",
        "",
        f"One iperf3 flow (`-O {mo.get('iperf3_O', 1)} -t {mo.get('iperf3_t', 3)}`, IPv4) from a "
        "cgroup without a rule, (a) with no netbumpd running (the veth has no qdisc), (b) with "
        f"netbumpd running and {mo.get('rules', '?')} cgroup rules of 10mbit loaded (HTB root and "
        "classes on the veth and its IFB, BPF on every packet). Veth throughput is CPU-bound and "
        f"noisy, so a and b alternate over {mo.get('rounds', '?')} rounds (a b, b a, …) and the "
        "medians are compared (the goal); the median of the per-round ratios is shown too. "
        + (f"iperf3 runs with `{mo['iperf3_A']}` (client on CPU 0, server on CPU 1)."
           if mo.get("iperf3_A") else ""),
        "",
        "| dir | (a) no netbumpd, median Gbit/s | (b) netbumpd + rules, median Gbit/s | b / a | goal "
        "| per-round b / a (median) | spread (max−min)/median a, b |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for d, v in ov.items():
        L.append(
            f"| {d} | {gbit(v['a_median_bps'])} | {gbit(v['b_median_bps'])} | {v['ratio']:.3f} | "
            f"{'pass' if v['pass'] else '**MISS**'} | {', '.join(format(x, '.3f') for x in v['round_ratios'])} "
            f"({v['round_ratio_median']:.3f}) | "
            f"{v['a_spread']:.1%}, {v['b_spread']:.1%} |")
    L.append("")

    notes = notes_for(res)
    if notes:
        L += ["Notes (generated from the numbers above):", ""] + [f"- {n}" for n in notes] + [""]

    c = res["control_plane"]
    if c:
        s = c["set_ms"]
        L += [
            "### Control plane",
            "",
            f"In each (b) round netbumpd starts and {c['rules']} `netbumpctl set cgroup:… 10mbit` run "
            "one after the other; each is timed from the CLI's start to its exit (exec, Varlink "
            "connect, two HTB classes and two leaf qdiscs by rtnetlink, reply).",
            "",
            "| what | value |",
            "|---|---:|",
            f"| {c['rules']} sets, total (median of {c['rounds']} rounds) | {c['set_total_median_s']:.3f} s |",
            f"| one set: median / mean / p95 / max | {s['median']:.2f} / {s['mean']:.2f} / {s['p95']:.2f} / {s['max']:.2f} ms |",
            f"| first set / last set ({c['rules']} rules loaded), medians | {s['first_median']:.2f} / {s['last_median']:.2f} ms |",
            f"| `netbumpctl list --json` with {c['rules']} rules, median | {c['list_json_ms_median']:.2f} ms |",
            f"| netbumpd start until `status` answers, median | {c['daemon_ready_s_median']:.3f} s |",
            f"| netbumpd stop with {c['rules']} rules (SIGTERM to exit), median | {c['daemon_stop_s_median']:.3f} s |",
            "",
        ]
    return "\n".join(L)


TITLE = "# netbump benchmarks"
BEGIN = "<!-- bench/run.sh: begin -->"
END = "<!-- bench/run.sh: end -->"


def write_md(path, section):
    """Replace our section of the page between its markers, leaving the rest (other benchmarks'
    sections) alone; put it right under the title when the page does not have it yet."""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}\n"
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    if BEGIN in old and END in old[old.index(BEGIN):]:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + block + ("\n" + tail if tail else "")
    elif old.startswith("# "):
        first, _, rest = old.partition("\n")
        rest = rest.lstrip("\n")
        new = f"{first}\n\n{block}" + ("\n" + rest if rest else "")
    else:
        new = f"{TITLE}\n\n{block}" + ("\n" + old if old else "")
    with open(path, "w") as f:
        f.write(new)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", help="raw samples from bench/run.sh (JSON lines)")
    ap.add_argument("--json", required=True, help="results JSON (written with --raw, read without)")
    ap.add_argument("--md", required=True, help="Markdown page to write")
    a = ap.parse_args()
    if a.raw:
        res = build(a.raw)
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    else:
        with open(a.json) as f:
            res = json.load(f)
    write_md(a.md, render(res))
    for name, g in res["goals"].items():
        print(f"goal {name}: {'pass' if g['pass'] else 'MISS'}"
              + (f" (missed: {', '.join(g['missed'])})" if g["missed"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
