import Foundation

/// One line of `token-vault bench`.
struct BenchResult: Encodable {
    let name: String
    let connections: Int
    let vaultOpsPerS: Double
    let baselineOpsPerS: Double
    let ratio: Double
    let target: Double
    /// The median over rounds of each round's ratio (its vault turn against its baseline turn, run back to back):
    /// steadier than `ratio` on a machine whose speed drifts, since a slow moment hits one round, not the sum.
    var roundRatioMedian: Double = .nan
    /// A 95 % confidence interval for the typical round's ratio (geometric mean of the rounds' ratios), from
    /// their spread; see `BenchRunner.interval95`. Nil (left out of the JSON) with one round.
    var ratioLow: Double? = nil
    var ratioHigh: Double? = nil
    /// The same SQL in a blocking loop on the connection's own thread, with no hand-off per call: what libpq
    /// does when nothing async is in the way. For reference; the ratio uses `baselineOpsPerS`.
    var blockingOpsPerS: Double? = nil
    /// This process's CPU time (user + system) per operation, and its context switches per operation.
    var vaultCPUMicrosecondsPerOp: Double = 0
    var baselineCPUMicrosecondsPerOp: Double = 0
    var vaultSwitchesPerOp: Double = 0
    var baselineSwitchesPerOp: Double = 0

    enum CodingKeys: String, CodingKey {
        case name, connections, vaultOpsPerS = "vault_ops_per_s", baselineOpsPerS = "baseline_ops_per_s", ratio, target
        case roundRatioMedian = "ratio_median_of_rounds"
        case ratioLow = "ratio_ci95_low", ratioHigh = "ratio_ci95_high"
        case blockingOpsPerS = "blocking_loop_ops_per_s"
        case vaultCPUMicrosecondsPerOp = "vault_cpu_us_per_op", baselineCPUMicrosecondsPerOp = "baseline_cpu_us_per_op"
        case vaultSwitchesPerOp = "vault_switches_per_op", baselineSwitchesPerOp = "baseline_switches_per_op"
    }
}

/// One line of `token-vault bench --calibrate`: the baseline with `workNanoseconds` of pure CPU added to each call,
/// where the vault does its own work, against the baseline. `workNanoseconds` is what the vault does beyond the
/// baseline's work (opening, or sealing), measured warm, unless `--calibrate-ns` set it. The ratio is what that
/// work would cost on this machine if it ran at its warm speed; `vaultRatio` is the vault's ratio; the gap between
/// them is what running cold, and the vault's pool and call path, cost.
struct BenchCalibration: Encodable {
    let name: String
    let connections: Int
    let workNanoseconds: Double
    let ratio: Double
    let ratioLow: Double?
    let ratioHigh: Double?
    let vaultRatio: Double

    enum CodingKeys: String, CodingKey {
        case name, connections, workNanoseconds = "work_ns", ratio
        case ratioLow = "ratio_ci95_low", ratioHigh = "ratio_ci95_high", vaultRatio = "vault_ratio"
    }
}

struct StampedeResult: Encodable {
    let callers: Int
    let endpointCalls: Int
    let distinctTokens: Int
    let seconds: Double

    enum CodingKeys: String, CodingKey {
        case callers, endpointCalls = "endpoint_calls", distinctTokens = "distinct_tokens", seconds
    }
}

struct BenchReport: Encodable {
    var results: [BenchResult] = []
    /// With `--calibrate` only (left out of the JSON otherwise).
    var calibrations: [BenchCalibration]?
    /// Whether the calibrations' work was set with `--calibrate-ns` rather than measured.
    var calibrationWorkIsFixed = false
    var stampede: StampedeResult?
    var isolation: IsolationResult?
    var refreshDue: RefreshDueResult?
    var peakResidentBytes = 0
    var rotateRows = 0
    var rotateSeconds = 0.0
    /// The vault's own CPU per call without the database, in nanoseconds, by figure name.
    var work: [String: Double] = [:]
    /// Where the vault's nonces come from on this machine ("vdso" or "libsodium"); the seal_open baseline always
    /// uses libsodium's `randombytes_buf`, as a raw libsodium caller does.
    var nonceSource = ""

    enum CodingKeys: String, CodingKey {
        case results, calibrations = "calibration", stampede, isolation, refreshDue = "refresh_due"
        case peakResidentBytes = "peak_resident_bytes", rotateRows = "rotate_rows"
        case rotateSeconds = "rotate_seconds"
        case work = "vault_work_ns_per_call"
        case nonceSource = "nonce_source"
    }

    mutating func add(_ calibration: BenchCalibration?) {
        if let calibration { calibrations = (calibrations ?? []) + [calibration] }
    }

    func table() -> String {
        var lines: [String] = []
        let header = [
            "name", "conns", "vault ops/s", "baseline ops/s", "ratio", "target", "", "95% interval", "median of rounds",
            "blocking loop ops/s",
            "CPU µs/op vault/baseline",
        ]
        var rows: [[String]] = results.map { result in
            [
                // seal_open uses no connection: "–", as in docs/performance.md (0 in JSON).
                result.name, result.connections == 0 ? "–" : String(result.connections),
                String(format: "%.0f", result.vaultOpsPerS),
                String(format: "%.0f", result.baselineOpsPerS), String(format: "%.2f", result.ratio),
                // A target of 0 is a figure for information (audit_read): no verdict.
                result.target > 0 ? String(format: "≥ %.2f", result.target) : "–",
                result.target > 0 ? (result.ratio >= result.target ? "ok" : "BELOW TARGET") : "",
                result.ratioLow.flatMap { low in result.ratioHigh.map { String(format: "%.2f–%.2f", low, $0) } } ?? "",
                String(format: "%.2f", result.roundRatioMedian),
                result.blockingOpsPerS.map { String(format: "%.0f", $0) } ?? "",
                String(
                    format: "%.1f / %.1f", result.vaultCPUMicrosecondsPerOp, result.baselineCPUMicrosecondsPerOp),
            ]
        }
        rows.insert(header, at: 0)
        lines += alignColumns(rows)
        if let calibrations {
            lines.append(
                "calibration: the baseline with pure CPU work (no memory, no allocation) added to each call, "
                    + (calibrationWorkIsFixed
                        ? "as set by --calibrate-ns"
                        : "as long as the vault's work beyond the baseline's, measured warm")
                    + ", against the baseline; the gap to the vault's ratio is what running cold and the vault's "
                    + "pool and call path cost:")
            for calibration in calibrations {
                let interval = calibration.ratioLow.flatMap { low in
                    calibration.ratioHigh.map { String(format: " (%.2f–%.2f)", low, $0) }
                }
                lines.append(
                    "  \(BenchRunner.label(calibration.name, connections: calibration.connections)): "
                        + String(
                            format: "%.2f µs a call → ratio %.2f", calibration.workNanoseconds / 1000, calibration.ratio
                        )
                        + (interval ?? "")
                        + String(
                            format: "; the vault: %.2f (gap %.2f)", calibration.vaultRatio,
                            calibration.ratio - calibration.vaultRatio))
            }
        }
        if let stampede {
            lines.append(
                "stampede: \(stampede.callers) concurrent callers on one expired token -> \(stampede.endpointCalls) "
                    + "endpoint call\(stampede.endpointCalls == 1 ? "" : "s"), \(stampede.distinctTokens) distinct "
                    + "token\(stampede.distinctTokens == 1 ? "" : "s"), \(String(format: "%.3f", stampede.seconds)) s")
        }
        if let isolation { lines.append(isolation.line) }
        if let refreshDue { lines.append(refreshDue.line) }
        if rotateRows > 0 {
            lines.append(
                "rotate: \(rotateRows) rows re-sealed in \(String(format: "%.2f", rotateSeconds)) s per run (vault)")
        }
        if !work.isEmpty {
            let parts = ["put", "audit_put", "get", "access_token"].compactMap { name in
                work[name].map { "\(name) \(String(format: "%.2f", $0 / 1000)) µs" }
            }
            lines.append(
                "vault's own CPU per call, without the database (warm caches, subkeys cached): "
                    + parts.joined(separator: ", "))
        }
        lines.append(
            "nonces: "
                + (nonceSource == "vdso"
                    ? "the kernel's vDSO getrandom (the seal_open baseline: randombytes_buf, a system call)"
                    : "libsodium's randombytes_buf, as in the seal_open baseline"))
        lines.append("peak resident memory: \(peakResidentBytes / 1_048_576) MiB")
        return lines.joined(separator: "\n")
    }
}

/// `rows` as lines of aligned columns two spaces apart: the first column left-aligned, the others right-aligned.
func alignColumns(_ rows: [[String]]) -> [String] {
    var widths: [Int] = []
    for row in rows {
        for (index, cell) in row.enumerated() {
            if index == widths.count { widths.append(0) }
            widths[index] = max(widths[index], cell.count)
        }
    }
    return rows.map { row in
        row.enumerated().map { index, cell in
            index == 0
                ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[index] - cell.count) + cell
        }.joined(separator: "  ")
    }
}
