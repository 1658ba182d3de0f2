import XCTest

@testable import token_vault_bench

/// `BenchSummary`, the statistics of `token-vault bench --runs N`, on hand-made results: no database.
final class BenchSummaryTests: XCTestCase {
    private func result(_ name: String, _ connections: Int, ratio: Double, target: Double) -> BenchResult {
        BenchResult(
            name: name, connections: connections, vaultOpsPerS: ratio * 1000, baselineOpsPerS: 1000, ratio: ratio,
            target: target, roundRatioMedian: ratio)
    }

    private func calibration(
        _ name: String, _ connections: Int, work: Double, ratio: Double, vaultRatio: Double
    ) -> BenchCalibration {
        BenchCalibration(
            name: name, connections: connections, workNanoseconds: work, ratio: ratio, ratioLow: nil, ratioHigh: nil,
            vaultRatio: vaultRatio)
    }

    /// Three runs; the third lists its figures in another order, and get/4 is in the first run only.
    private var runs: [[BenchResult]] {
        [
            [result("put", 1, ratio: 0.90, target: 0.90), result("put", 4, ratio: 1.00, target: 0.90)],
            [result("put", 1, ratio: 0.95, target: 0.90), result("put", 4, ratio: 0.80, target: 0.90)],
            [
                result("put", 4, ratio: 0.90, target: 0.90), result("put", 1, ratio: 0.85, target: 0.90),
                result("get", 4, ratio: 0.70, target: 0.90),
            ],
        ]
    }

    func testMeanSampleStandardDeviationRangeAndBelowTarget() throws {
        let summary = BenchSummary(results: runs)
        XCTAssertEqual(summary.runs, 3)
        XCTAssertEqual(summary.figures.map { "\($0.name)/\($0.connections)" }, ["put/1", "put/4", "get/4"])
        XCTAssertNil(summary.calibrations)

        let put1 = summary.figures[0]
        XCTAssertEqual(put1.runs, 3)
        XCTAssertEqual(put1.mean, 0.90, accuracy: 1e-12)
        // Deviations 0, +0.05, −0.05: sample variance 0.005 / 2.
        XCTAssertEqual(try XCTUnwrap(put1.sd), 0.05, accuracy: 1e-12)
        XCTAssertEqual(put1.min, 0.85)
        XCTAssertEqual(put1.max, 0.95)
        XCTAssertEqual(put1.belowTarget, 1, "0.90 against ≥ 0.90 meets it; only 0.85 is below")
        XCTAssertEqual(put1.target, 0.90)

        let put4 = summary.figures[1]
        XCTAssertEqual(put4.mean, 0.90, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(put4.sd), 0.1, accuracy: 1e-12)
        XCTAssertEqual(put4.min, 0.80)
        XCTAssertEqual(put4.max, 1.00)
        XCTAssertEqual(put4.belowTarget, 1)

        let get4 = summary.figures[2]
        XCTAssertEqual(get4.runs, 1)
        XCTAssertEqual(get4.mean, 0.70)
        XCTAssertNil(get4.sd, "one run has no standard deviation")
        XCTAssertEqual(get4.min, 0.70)
        XCTAssertEqual(get4.max, 0.70)
        XCTAssertEqual(get4.belowTarget, 1)
    }

    func testBelowTargetAtTheBoundary() {
        let summary = BenchSummary(results: [
            [result("import", 1, ratio: 0.80, target: 0.80)],
            [result("import", 1, ratio: 0.8 - 1e-9, target: 0.80)],
            [result("import", 1, ratio: 0.8 + 1e-9, target: 0.80)],
        ])
        XCTAssertEqual(summary.figures.map(\.belowTarget), [1])
    }

    func testStatistics() {
        XCTAssertEqual(BenchSummary.mean([1, 2, 3, 4]), 2.5)
        XCTAssertTrue(BenchSummary.mean([]).isNaN)
        XCTAssertEqual(try XCTUnwrap(BenchSummary.standardDeviation([2, 4, 4, 4, 5, 5, 7, 9])), 2.138089935299395)
        XCTAssertNil(BenchSummary.standardDeviation([3]))
        XCTAssertNil(BenchSummary.standardDeviation([]))
        XCTAssertEqual(BenchSummary.standardDeviation([0.5, 0.5]), 0)
    }

    func testTablePrintsOneLinePerFigureADashForOneRunAndTheCaveat() {
        let lines = BenchSummary(results: runs).table().split(separator: "\n", omittingEmptySubsequences: false)
            .map(String.init)
        XCTAssertEqual(lines[0], "summary of 3 runs, ratio vault/baseline per figure:")
        let cells = lines.dropFirst().prefix(4).map { $0.split(separator: " ").map(String.init) }
        XCTAssertEqual(
            cells,
            [
                ["name", "conns", "runs", "mean", "sd", "range", "below", "target"],
                ["put", "1", "3", "0.900", "0.050", "0.850–0.950", "1", "≥", "0.90"],
                ["put", "4", "3", "0.900", "0.100", "0.800–1.000", "1", "≥", "0.90"],
                ["get", "4", "1", "0.700", "–", "0.700–0.700", "1", "≥", "0.90"],
            ])
        XCTAssertEqual(Set(lines[1...4].map(\.count)).count, 1, "aligned columns:\n\(lines.joined(separator: "\n"))")
        XCTAssertEqual(lines[5], "")
        XCTAssertEqual(
            lines[6...].joined(separator: "\n"),
            """
            The runs are not independent (the machine's speed and the vault's share drift over minutes): read the mean
            with the range, and repeat at another time before trusting a difference of a few points.
            """)
        XCTAssertFalse(lines.contains { $0.hasPrefix("--calibrate") }, "no calibration table unless calibrated")
    }

    func testCalibrationSummaryAndJSON() throws {
        var first = BenchReport()
        first.results = [result("seal_open", 0, ratio: 1.0, target: 0.8), result("get", 1, ratio: 0.90, target: 0.9)]
        first.calibrations = [calibration("get", 1, work: 1000, ratio: 1.00, vaultRatio: 0.90)]
        var second = BenchReport()
        second.results = [result("seal_open", 0, ratio: 0.9, target: 0.8), result("get", 1, ratio: 0.80, target: 0.9)]
        second.calibrations = [calibration("get", 1, work: 2000, ratio: 0.96, vaultRatio: 0.80)]
        let summary = BenchSummary(reports: [first, second])

        let calibrations = try XCTUnwrap(summary.calibrations)
        XCTAssertEqual(calibrations.count, 1)
        let get = calibrations[0]
        XCTAssertEqual(get.runs, 2)
        XCTAssertEqual(get.workNanosecondsMean, 1500)
        XCTAssertEqual(get.ratioMean, 0.98, accuracy: 1e-12)
        XCTAssertEqual(get.vaultRatioMean, 0.85, accuracy: 1e-12)
        // Gaps 0.10 and 0.16.
        XCTAssertEqual(get.gapMean, 0.13, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(get.gapSD), 0.06 / 2.0.squareRoot(), accuracy: 1e-12)
        XCTAssertEqual(get.gapMin, 0.10, accuracy: 1e-12)
        XCTAssertEqual(get.gapMax, 0.16, accuracy: 1e-12)

        let table = summary.table()
        XCTAssertTrue(table.contains("seal_open      –     2  0.950  0.071  0.900–1.000      0  ≥ 0.80"), table)
        let tableLines = table.split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(tableLines.firstIndex { $0.hasPrefix("name") && $0.contains("work µs") }, table)
        XCTAssertTrue(tableLines[header - 1].hasPrefix("calibrated ratio minus the vault's, run by run"), table)
        XCTAssertEqual(
            tableLines[header + 1].split(separator: " ").map(String.init),
            ["get", "1", "2", "1.50", "0.980", "0.850", "0.130", "0.042", "0.100–0.160"])

        let object = try XCTUnwrap(
            JSONSerialization.jsonObject(
                with: JSONEncoder().encode(BenchRuns(runs: [first, second], summary: summary)))
                as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["runs", "summary", "calibration_summary"])
        XCTAssertEqual((object["runs"] as? [[String: Any]])?.count, 2)
        let lines = try XCTUnwrap(object["summary"] as? [[String: Any]])
        XCTAssertEqual(
            Set(lines[0].keys),
            ["name", "connections", "runs", "mean", "sd", "min", "max", "below_target", "target"])
        XCTAssertEqual(lines.map { $0["name"] as? String }, ["seal_open", "get"])
        XCTAssertEqual(lines[1]["below_target"] as? Int, 1)
        XCTAssertEqual(lines[1]["mean"] as? Double ?? 0, 0.85, accuracy: 1e-12)
        let calibrationObject = try XCTUnwrap((object["calibration_summary"] as? [[String: Any]])?.first)
        XCTAssertEqual(
            Set(calibrationObject.keys),
            [
                "name", "connections", "runs", "work_ns_mean", "ratio_mean", "vault_ratio_mean", "gap_mean", "gap_sd",
                "gap_min", "gap_max",
            ])

        // One run: sd is null, not left out; no calibration summary without calibrations.
        let single = try XCTUnwrap(
            JSONSerialization.jsonObject(
                with: JSONEncoder().encode(
                    BenchRuns(
                        runs: [BenchReport()],
                        summary: BenchSummary(results: [[result("put", 1, ratio: 1, target: 0.9)]]))))
                as? [String: Any])
        XCTAssertEqual(Set(single.keys), ["runs", "summary"])
        let line = try XCTUnwrap((single["summary"] as? [[String: Any]])?.first)
        XCTAssertTrue(line["sd"] is NSNull, "\(line)")
    }

    private func isolation(quietP99: Double, busyP99: Double) -> IsolationResult {
        IsolationResult(
            connections: 4, readers: 4, refreshing: 4, providerSeconds: 2, quietCalls: 100, busyCalls: 100,
            refreshes: 8, quietP50Milliseconds: 0.1, quietP99Milliseconds: quietP99, busyP50Milliseconds: 0.1,
            busyP99Milliseconds: busyP99, ratio: busyP99 / quietP99, target: 2)
    }

    func testIsolationQuantilesAndSummary() throws {
        let samples = (1...100).map { Duration.milliseconds($0) }.shuffled()
        XCTAssertEqual(IsolationResult.quantile(samples, 0.5), 50, accuracy: 1e-9)
        XCTAssertEqual(IsolationResult.quantile(samples, 0.99), 99, accuracy: 1e-9)
        XCTAssertEqual(IsolationResult.quantile([.microseconds(250)], 0.99), 0.25, accuracy: 1e-9)
        XCTAssertTrue(IsolationResult.quantile([], 0.5).isNaN)

        var first = BenchReport()
        first.isolation = isolation(quietP99: 1, busyP99: 1.5)
        var second = BenchReport()
        second.isolation = isolation(quietP99: 1, busyP99: 2.5)
        let summary = try XCTUnwrap(BenchSummary(reports: [first, second, BenchReport()]).isolation)
        XCTAssertEqual(summary.runs, 2)
        XCTAssertEqual(summary.mean, 2.0, accuracy: 1e-9)
        XCTAssertEqual(summary.aboveTarget, 1)
        XCTAssertTrue(first.isolation!.line.hasSuffix("ok"))
        XCTAssertTrue(second.isolation!.line.hasSuffix("ABOVE TARGET"))
        XCTAssertNil(BenchSummary(reports: [BenchReport()]).isolation)
    }
}
