import Foundation

/// `token-vault bench --runs N`: each figure (name and connections) over the runs, in the order the figures first
/// appear. Pure arithmetic on the runs' reports: no database, no I/O.
struct BenchSummary {
    /// One figure's ratios (vault/baseline) over the runs.
    struct Figure: Encodable, Equatable {
        let name: String
        let connections: Int
        let runs: Int
        let mean: Double
        /// The sample standard deviation (n − 1); nil with one run.
        let sd: Double?
        let min: Double
        let max: Double
        /// Runs whose ratio is below the target (a ratio equal to the target meets it, as in the table's "ok").
        let belowTarget: Int
        let target: Double

        enum CodingKeys: String, CodingKey {
            case name, connections, runs, mean, sd, min, max, belowTarget = "below_target", target
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(connections, forKey: .connections)
            try container.encode(runs, forKey: .runs)
            try container.encode(mean, forKey: .mean)
            try container.encode(sd, forKey: .sd)  // null with one run
            try container.encode(min, forKey: .min)
            try container.encode(max, forKey: .max)
            try container.encode(belowTarget, forKey: .belowTarget)
            try container.encode(target, forKey: .target)
        }
    }

    /// One figure's calibrations over the runs (`--calibrate`). The gap is the calibrated ratio minus the vault's,
    /// run by run.
    struct Calibration: Encodable, Equatable {
        let name: String
        let connections: Int
        let runs: Int
        let workNanosecondsMean: Double
        let ratioMean: Double
        let vaultRatioMean: Double
        let gapMean: Double
        /// The gaps' sample standard deviation; nil with one run.
        let gapSD: Double?
        let gapMin: Double
        let gapMax: Double

        enum CodingKeys: String, CodingKey {
            case name, connections, runs, workNanosecondsMean = "work_ns_mean", ratioMean = "ratio_mean"
            case vaultRatioMean = "vault_ratio_mean", gapMean = "gap_mean", gapSD = "gap_sd", gapMin = "gap_min"
            case gapMax = "gap_max"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(connections, forKey: .connections)
            try container.encode(runs, forKey: .runs)
            try container.encode(workNanosecondsMean, forKey: .workNanosecondsMean)
            try container.encode(ratioMean, forKey: .ratioMean)
            try container.encode(vaultRatioMean, forKey: .vaultRatioMean)
            try container.encode(gapMean, forKey: .gapMean)
            try container.encode(gapSD, forKey: .gapSD)  // null with one run
            try container.encode(gapMin, forKey: .gapMin)
            try container.encode(gapMax, forKey: .gapMax)
        }
    }

    /// How many runs were summarised.
    let runs: Int
    let figures: [Figure]
    /// Nil when no run was calibrated.
    let calibrations: [Calibration]?
    /// The `isolation` figure over the runs that measured it; nil when none did.
    var isolation: Isolation?

    /// The `isolation` figure's p99 ratio (busy over quiet) over the runs.
    struct Isolation: Encodable, Equatable {
        let runs: Int
        let mean: Double
        let min: Double
        let max: Double
        let aboveTarget: Int
        let target: Double

        enum CodingKeys: String, CodingKey {
            case runs, mean, min, max, target, aboveTarget = "above_target"
        }

        init?(_ results: [IsolationResult]) {
            guard let first = results.first else { return nil }
            let ratios = results.map(\.ratio)
            runs = ratios.count
            mean = BenchSummary.mean(ratios)
            min = ratios.min()!
            max = ratios.max()!
            aboveTarget = results.filter { $0.ratio > $0.target }.count
            target = first.target
        }
    }

    init(reports: [BenchReport]) {
        self.init(
            results: reports.map(\.results),
            calibrations: reports.contains { $0.calibrations != nil } ? reports.map { $0.calibrations ?? [] } : nil)
        isolation = Isolation(reports.compactMap(\.isolation))
    }

    /// `results[i]` and `calibrations?[i]` are run i's lines.
    init(results: [[BenchResult]], calibrations: [[BenchCalibration]]? = nil) {
        runs = results.count
        figures = Self.grouped(results.joined()) { "\($0.name)/\($0.connections)" }.map { lines in
            let ratios = lines.map(\.ratio)
            let target = lines[0].target
            return Figure(
                name: lines[0].name, connections: lines[0].connections, runs: ratios.count,
                mean: Self.mean(ratios), sd: Self.standardDeviation(ratios), min: ratios.min()!, max: ratios.max()!,
                belowTarget: lines.filter { $0.ratio < $0.target }.count, target: target)
        }
        self.calibrations = calibrations.map { calibrations in
            Self.grouped(calibrations.joined()) { "\($0.name)/\($0.connections)" }.map { lines in
                let gaps = lines.map { $0.ratio - $0.vaultRatio }
                return Calibration(
                    name: lines[0].name, connections: lines[0].connections, runs: lines.count,
                    workNanosecondsMean: Self.mean(lines.map(\.workNanoseconds)),
                    ratioMean: Self.mean(lines.map(\.ratio)), vaultRatioMean: Self.mean(lines.map(\.vaultRatio)),
                    gapMean: Self.mean(gaps), gapSD: Self.standardDeviation(gaps), gapMin: gaps.min()!,
                    gapMax: gaps.max()!)
            }
        }
    }

    /// `items` grouped by `key`, groups in the order their keys first appear, items in their order.
    static func grouped<Item>(_ items: some Sequence<Item>, by key: (Item) -> String) -> [[Item]] {
        var order: [String] = []
        var groups: [String: [Item]] = [:]
        for item in items {
            let itemKey = key(item)
            if groups[itemKey] == nil { order.append(itemKey) }
            groups[itemKey, default: []].append(item)
        }
        return order.map { groups[$0]! }
    }

    static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }

    /// The sample standard deviation (divided by n − 1); nil for fewer than two values.
    static func standardDeviation(_ values: [Double]) -> Double? {
        guard values.count >= 2 else { return nil }
        let mean = mean(values)
        return (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }

    /// The caveat under the summary: what its numbers cannot say.
    static let caveat = """
        The runs are not independent (the machine's speed and the vault's share drift over minutes): read the mean
        with the range, and repeat at another time before trusting a difference of a few points.
        """

    /// The summary as printed after the runs' tables: one line per figure, the calibrations' (if any), the caveat.
    func table() -> String {
        let number = { (value: Double?) in value.map { String(format: "%.3f", $0) } ?? "–" }
        let range = { (low: Double, high: Double) in String(format: "%.3f–%.3f", low, high) }
        let connections = { (count: Int) in count == 0 ? "–" : String(count) }
        var lines = ["summary of \(runs) run\(runs == 1 ? "" : "s"), ratio vault/baseline per figure:"]
        lines += alignColumns(
            [["name", "conns", "runs", "mean", "sd", "range", "below", "target"]]
                + figures.map { figure in
                    [
                        figure.name, connections(figure.connections), String(figure.runs), number(figure.mean),
                        number(figure.sd), range(figure.min, figure.max), String(figure.belowTarget),
                        String(format: "≥ %.2f", figure.target),
                    ]
                })
        if let calibrations {
            lines.append("")
            lines.append(
                """
                --calibrate: the baseline with pure CPU work added to each call, against the baseline; the gap is the
                calibrated ratio minus the vault's, run by run (what running cold and the pool and call path cost)
                """)
            lines += alignColumns(
                [["name", "conns", "runs", "work µs", "calibrated", "the vault", "gap", "gap sd", "gap range"]]
                    + calibrations.map { calibration in
                        [
                            calibration.name, connections(calibration.connections), String(calibration.runs),
                            String(format: "%.2f", calibration.workNanosecondsMean / 1000),
                            number(calibration.ratioMean), number(calibration.vaultRatioMean),
                            number(calibration.gapMean), number(calibration.gapSD),
                            range(calibration.gapMin, calibration.gapMax),
                        ]
                    })
        }
        if let isolation {
            lines.append("")
            lines.append(
                String(
                    format: "isolation, p99 latency while other rows refresh over quiet p99, %d run%@: mean %.2f, "
                        + "range %.2f–%.2f, %d above target (≤ %.1f)",
                    isolation.runs, isolation.runs == 1 ? "" : "s", isolation.mean, isolation.min, isolation.max,
                    isolation.aboveTarget, isolation.target))
        }
        lines += ["", Self.caveat]
        return lines.joined(separator: "\n")
    }
}

/// `token-vault bench --runs N --json` with N > 1: every run's report, then the summaries.
struct BenchRuns: Encodable {
    let runs: [BenchReport]
    let summary: BenchSummary

    enum CodingKeys: String, CodingKey {
        case runs, summary, calibrationSummary = "calibration_summary", isolationSummary = "isolation_summary"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(runs, forKey: .runs)
        try container.encode(summary.figures, forKey: .summary)
        try container.encodeIfPresent(summary.calibrations, forKey: .calibrationSummary)
        try container.encodeIfPresent(summary.isolation, forKey: .isolationSummary)
    }
}
