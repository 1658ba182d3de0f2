#!/usr/bin/env bash
# Runs `token-vault bench --json` N times in a row and summarises each figure over the runs: mean ratio, standard
# deviation, range, and how many runs read below the target. One run cannot tell 0.89 from 0.93 on a noisy
# machine; many runs can, as long as one remembers that they are not independent (the machine drifts over minutes).
#   usage: DATABASE_URL=… bash docs/measure-many.sh [N] [bench options…]     (default: 10 runs, all figures)
#   e.g.   bash docs/measure-many.sh 20 --only put,get
#          bash docs/measure-many.sh 6 --only put,get,access_token --calibrate   (adds the calibration's means)
# Needs a release build (swift build -c release) and python3. Each run creates and drops its own scratch schema.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(swift build -c release --show-bin-path)"
: "${DATABASE_URL:?set DATABASE_URL (or start one: eval \"\$(.build/release/token-vault-test-postgres start)\")}"
RUNS="${1:-10}"
shift || true
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
for i in $(seq 1 "$RUNS"); do
  echo "run $i of $RUNS" >&2
  "$BIN/token-vault" bench --json "$@" > "$OUT/run-$i.json"
done
python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
runs = [json.load(open(path)) for path in sorted(glob.glob(sys.argv[1] + "/run-*.json"))]
figures = {}
for run in runs:
    for result in run["results"]:
        key = (result["name"], result["connections"])
        figures.setdefault(key, {"target": result["target"], "ratios": []})["ratios"].append(result["ratio"])
print("%-14s %5s %5s %7s %7s %13s %6s %8s" % ("name", "conns", "runs", "mean", "sd", "range", "below", "target"))
for (name, connections), figure in figures.items():
    ratios, target = figure["ratios"], figure["target"]
    sd = statistics.stdev(ratios) if len(ratios) > 1 else float("nan")
    print("%-14s %5s %5d %7.3f %7.3f %6.3f-%.3f %6d %8.2f" % (
        name, connections or "-", len(ratios), statistics.mean(ratios), sd, min(ratios), max(ratios),
        sum(r < target for r in ratios), target))
calibrations = {}
for run in runs:
    for calibration in run.get("calibration", []):
        key = (calibration["name"], calibration["connections"])
        calibrations.setdefault(key, []).append(calibration)
if calibrations:
    print()
    print("--calibrate: the baseline with pure CPU work added to each call, against the baseline; the gap is the")
    print("calibrated ratio minus the vault's, run by run (what running cold and the pool and call path cost)")
    print("%-14s %5s %5s %8s %11s %10s %7s %7s %13s" % (
        "name", "conns", "runs", "work µs", "calibrated", "the vault", "gap", "gap sd", "gap range"))
    for (name, connections), entries in calibrations.items():
        gaps = [e["ratio"] - e["vault_ratio"] for e in entries]
        gap_sd = statistics.stdev(gaps) if len(gaps) > 1 else float("nan")
        print("%-14s %5s %5d %8.2f %11.3f %10.3f %7.3f %7.3f %6.3f-%.3f" % (
            name, connections, len(entries), statistics.mean(e["work_ns"] for e in entries) / 1000,
            statistics.mean(e["ratio"] for e in entries), statistics.mean(e["vault_ratio"] for e in entries),
            statistics.mean(gaps), gap_sd, min(gaps), max(gaps)))
print("The runs are not independent (the machine's speed and the vault's share drift over minutes): read the mean")
print("with the range, and repeat at another time before trusting a difference of a few points.")
PY
