import Foundation
import TokenVaultTesting
import XCTest

@testable import TokenVault

/// `token-vault bench` with tiny sizes, so that it keeps working. No assertion on speed.
final class CLIBenchTests: DatabaseTestCase {
    func testBenchRunsEveryFigureAndCleansUp() async throws {
        let database = try await makeDatabase()
        let cli = CLIRunner(databaseURL: database.url, key: nil)
        let run = try cli.run([
            "bench", "--json", "--duration", "0.2", "--rounds", "2", "--rows", "300", "--clients", "20",
            "--callers", "8",
        ])
        XCTAssertEqual(run.status, 0, run.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let results = try XCTUnwrap(object["results"] as? [[String: Any]])
        XCTAssertEqual(
            results.map { "\($0["name"]!)/\($0["connections"]!)" },
            [
                "seal_open/0", "put/1", "put/4", "get/1", "get/4", "access_token/4", "audit_put/4", "audit_read/4",
                "import/1", "rotate/1",
            ])
        for result in results {
            // audit_read is a figure for information: its target is 0.
            let keys =
                ["vault_ops_per_s", "baseline_ops_per_s", "ratio", "ratio_median_of_rounds"]
                + (result["name"] as? String == "audit_read" ? [] : ["target"])
            for key in keys {
                XCTAssertGreaterThan((result[key] as? Double) ?? 0, 0, "\(result["name"]!).\(key)")
            }
            let low = try XCTUnwrap(
                result["ratio_ci95_low"] as? Double, "\(result["name"]!): two rounds give an interval")
            let high = try XCTUnwrap(result["ratio_ci95_high"] as? Double, "\(result["name"]!)")
            XCTAssertTrue(low > 0 && low <= high, "\(result["name"]!): \(low)–\(high)")
            XCTAssertGreaterThan((result["vault_cpu_us_per_op"] as? Double) ?? 0, 0, "\(result["name"]!)")
            XCTAssertNotNil(result["baseline_switches_per_op"] as? Double, "\(result["name"]!)")
        }
        let work = try XCTUnwrap(object["vault_work_ns_per_call"] as? [String: Double])
        XCTAssertEqual(Set(work.keys), ["put", "get", "access_token", "audit_put"])
        XCTAssertTrue(work.values.allSatisfy { $0 > 0 }, "\(work)")
        let stampede = try XCTUnwrap(object["stampede"] as? [String: Any])
        XCTAssertEqual(stampede["callers"] as? Int, 8)
        XCTAssertEqual(stampede["endpoint_calls"] as? Int, 1, "one refresh for every caller")
        XCTAssertEqual(stampede["distinct_tokens"] as? Int, 1)
        let isolation = try XCTUnwrap(object["isolation"] as? [String: Any])
        XCTAssertEqual(isolation["refreshing"] as? Int, 4)
        XCTAssertGreaterThan(isolation["refreshes"] as? Int ?? 0, 0, "rows refreshed during the busy turns")
        for key in ["quiet_p50_ms", "quiet_p99_ms", "busy_p50_ms", "busy_p99_ms", "ratio"] {
            XCTAssertGreaterThan((isolation[key] as? Double) ?? 0, 0, "isolation.\(key)")
        }
        // Not the target (that is the bench's to judge), but a refresh that held a connection while its provider
        // took 2 s would put seconds into the busy p99.
        XCTAssertLessThan(isolation["busy_p99_ms"] as? Double ?? .infinity, 500, "no read waited for a refresh")
        XCTAssertGreaterThan(object["peak_resident_bytes"] as? Int ?? 0, 0)
        XCTAssertTrue(["vdso", "libsodium"].contains(object["nonce_source"] as? String ?? ""))
        try await assertNoScratchSchemaLeft(database, "the scratch schema is dropped")
        let tables = try await AdminSQL.query(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'oauth_tokens'", url: database.url)
        XCTAssertEqual(tables.first?[0], "0", "bench touched nothing outside its schema")

        let table = try cli.run(["bench", "--only", "seal_open,stampede", "--duration", "0.1", "--rounds", "1"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.contains("seal_open"), table.stdout)
        XCTAssertNil(
            table.stdout.range(of: "[0-9]–[0-9]", options: .regularExpression),
            "one round gives no interval: \(table.stdout)")
        XCTAssertNotNil(
            table.stdout.range(of: "seal_open +– ", options: .regularExpression),
            "seal_open uses no connection: \(table.stdout)")
        XCTAssertTrue(table.stdout.contains("-> 1 endpoint call"), table.stdout)
        let get = try cli.run(["bench", "--only", "get", "--duration", "0.2", "--rounds", "2", "--clients", "5"])
        XCTAssertEqual(get.status, 0, get.stderr)
        XCTAssertTrue(get.stdout.contains("95% interval"), get.stdout)
        XCTAssertTrue(get.stdout.contains("vault's own CPU per call, without the database"), get.stdout)
        XCTAssertEqual(try cli.run(["bench", "--only", "nonsense"]).status, 64)
        XCTAssertNil(object["calibration"], "no calibration unless asked for")
        // Fewer rows than workers crashed the blocking loop (a worker with no rows) and left the schema behind.
        let few = try cli.run(["bench", "--only", "put", "--clients", "3"])
        XCTAssertEqual(few.status, 64, few.stderr)
        XCTAssertTrue(few.stderr.contains("--clients must be 4 to 1000000"), few.stderr)
    }

    /// `--calibrate` times the baselines with pure CPU work added to each call, against the baselines.
    func testBenchCalibrates() async throws {
        let database = try await makeDatabase()
        let cli = CLIRunner(databaseURL: database.url, key: nil)
        let run = try cli.run([
            "bench", "--json", "--only", "put,access_token", "--calibrate", "--duration", "0.2", "--rounds", "2",
            "--clients", "8",
        ])
        XCTAssertEqual(run.status, 0, run.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let results = try XCTUnwrap(object["results"] as? [[String: Any]])
        let calibrations = try XCTUnwrap(object["calibration"] as? [[String: Any]])
        let work = try XCTUnwrap(object["vault_work_ns_per_call"] as? [String: Double])
        XCTAssertEqual(
            calibrations.map { "\($0["name"]!)/\($0["connections"]!)" }, ["put/1", "put/4", "access_token/4"])
        for calibration in calibrations {
            let name = try XCTUnwrap(calibration["name"] as? String)
            let result = try XCTUnwrap(
                results.first {
                    $0["name"] as? String == name && $0["connections"] as? Int == calibration["connections"] as? Int
                })
            // The vault's work beyond the baseline's is part of its whole work (which adds what both do), but they are
            // two separate timings of a debug build: on a loaded machine the part has read above the whole (6097 ns
            // against 5970 in CI; 21205 against 12019 with other builds running). A test cannot hold timings to
            // each other; it checks that both were measured.
            let extra = try XCTUnwrap(calibration["work_ns"] as? Double, name)
            XCTAssertGreaterThan(extra, 0, name)
            XCTAssertGreaterThan(work[name] ?? 0, 0, name)
            XCTAssertGreaterThan(calibration["ratio"] as? Double ?? 0, 0, name)
            XCTAssertNotNil(calibration["ratio_ci95_low"] as? Double, name)
            XCTAssertEqual(calibration["vault_ratio"] as? Double, result["ratio"] as? Double, name)
        }

        let fixed = try cli.run([
            "bench", "--only", "get", "--calibrate", "--calibrate-ns", "500", "--duration", "0.2", "--rounds", "1",
            "--clients", "4",
        ])
        XCTAssertEqual(fixed.status, 0, fixed.stderr)
        XCTAssertTrue(fixed.stdout.contains("calibration: the baseline with pure CPU work"), fixed.stdout)
        XCTAssertTrue(fixed.stdout.contains("as set by --calibrate-ns"), fixed.stdout)
        XCTAssertTrue(fixed.stdout.contains("get, 4 connections: 0.50 µs a call → ratio"), fixed.stdout)

        for (arguments, message) in [
            (["--calibrate-ns", "500"], "--calibrate-ns needs --calibrate."),
            (["--calibrate", "--calibrate-ns=-1"], "--calibrate-ns must be 0 to 1000000 nanoseconds."),
            (["--calibrate", "--only", "rotate"], "--calibrate applies to put, get and access_token"),
        ] {
            let refused = try cli.run(["bench"] + arguments)
            XCTAssertEqual(refused.status, 64, "\(arguments): \(refused.stderr)")
            XCTAssertTrue(refused.stderr.contains(message), "\(arguments): \(refused.stderr)")
        }
    }

    /// `--runs 2`: the bench twice, each run's table then the summary per figure; in JSON, the runs and summaries.
    func testBenchRunsSeveralTimesAndSummarises() async throws {
        let database = try await makeDatabase()
        let cli = CLIRunner(databaseURL: database.url, key: nil)
        let table = try cli.run([
            "bench", "--runs", "2", "--only", "seal_open,get", "--duration", "0.1", "--rounds", "2", "--clients", "4",
        ])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stderr.contains("bench: run 1 of 2\n"), table.stderr)
        XCTAssertTrue(table.stderr.contains("bench: run 2 of 2\n"), table.stderr)
        XCTAssertTrue(table.stdout.contains("run 1 of 2:\nname "), table.stdout)
        XCTAssertTrue(table.stdout.contains("run 2 of 2:\nname "), table.stdout)
        let lines = table.stdout.split(separator: "\n").map(String.init)
        let start = try XCTUnwrap(
            lines.firstIndex(of: "summary of 2 runs, ratio vault/baseline per figure:"), table.stdout)
        XCTAssertEqual(
            lines[start + 1].split(separator: " "), ["name", "conns", "runs", "mean", "sd", "range", "below", "target"])
        let pattern =
            "^[a-z_]+ +[–0-9]+ +2 +[0-9]+\\.[0-9]{3} +[0-9]+\\.[0-9]{3} +[0-9.]+–[0-9.]+ +[0-2]  ≥ 0\\.[0-9]{2}$"
        let rows = lines[(start + 2)...].prefix { $0.range(of: pattern, options: .regularExpression) != nil }
        XCTAssertEqual(
            rows.map { $0.split(separator: " ")[0...1].joined(separator: "/") }, ["seal_open/–", "get/1", "get/4"],
            table.stdout)
        XCTAssertTrue(
            table.stdout.hasSuffix("repeat at another time before trusting a difference of a few points.\n"),
            table.stdout)
        XCTAssertFalse(table.stdout.contains("--calibrate:"), "no calibration summary unless asked for")

        let run = try cli.run([
            "bench", "--runs", "2", "--json", "--only", "get", "--calibrate", "--duration", "0.1", "--rounds", "2",
            "--clients", "4",
        ])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("bench: run 2 of 2"), run.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["runs", "summary", "calibration_summary"])
        let runs = try XCTUnwrap(object["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.count, 2)
        let ratios = try runs.map { run in
            try XCTUnwrap(run["results"] as? [[String: Any]]).map { $0["ratio"] as? Double ?? .nan }
        }
        let summary = try XCTUnwrap(object["summary"] as? [[String: Any]])
        XCTAssertEqual(summary.map { "\($0["name"]!)/\($0["connections"]!)" }, ["get/1", "get/4"])
        for (index, line) in summary.enumerated() {
            let mine = ratios.map { $0[index] }
            XCTAssertEqual(line["runs"] as? Int, 2)
            XCTAssertEqual(line["mean"] as? Double ?? 0, (mine[0] + mine[1]) / 2, accuracy: 1e-9)
            XCTAssertEqual(line["sd"] as? Double ?? -1, abs(mine[0] - mine[1]) / 2.0.squareRoot(), accuracy: 1e-9)
            XCTAssertEqual(line["min"] as? Double, mine.min())
            XCTAssertEqual(line["max"] as? Double, mine.max())
            XCTAssertEqual(line["target"] as? Double, 0.90)
            XCTAssertEqual(line["below_target"] as? Int, mine.filter { $0 < 0.90 }.count)
        }
        let calibrations = try XCTUnwrap(object["calibration_summary"] as? [[String: Any]])
        XCTAssertEqual(calibrations.map { "\($0["name"]!)/\($0["connections"]!)" }, ["get/1", "get/4"])
        for calibration in calibrations {
            XCTAssertEqual(calibration["runs"] as? Int, 2)
            XCTAssertGreaterThan(calibration["work_ns_mean"] as? Double ?? 0, 0)
            XCTAssertNotNil(calibration["gap_sd"] as? Double)
        }

        for value in ["0", "101"] {
            let refused = try cli.run(["bench", "--runs", value])
            XCTAssertEqual(refused.status, 64, refused.stderr)
            XCTAssertTrue(refused.stderr.contains("--runs must be 1 to 100"), refused.stderr)
        }
        try await assertNoScratchSchemaLeft(database, "every run's scratch schema is dropped")
    }

    /// Ctrl-C in the first of three runs: as with one run (schema dropped, exit 130, no report), and no more runs.
    func testCtrlCStopsTheRemainingRuns() async throws {
        let database = try await makeDatabase()
        let cli = CLIRunner(databaseURL: database.url, key: nil)
        let (process, output, errors) = try cli.start([
            "bench", "--runs", "3", "--only", "seal_open", "--duration", "2", "--rounds", "1",
        ])
        try await Task.sleep(nanoseconds: 1_500_000_000)
        kill(process.processIdentifier, SIGINT)
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertEqual(stdout, "", "no report after Ctrl-C")
        XCTAssertTrue(stderr.contains("bench: run 1 of 3"), stderr)
        XCTAssertFalse(stderr.contains("run 2 of 3"), stderr)
        let schema = try XCTUnwrap(
            stderr.range(of: "token_vault_bench_[0-9]+", options: .regularExpression).map { String(stderr[$0]) },
            stderr)
        XCTAssertTrue(stderr.contains("dropping the scratch schema \(schema) (Ctrl-C again"), stderr)
        XCTAssertTrue(stderr.contains("interrupted; the scratch schema \(schema) was dropped."), stderr)
        try await assertNoScratchSchemaLeft(database, "the scratch schema is dropped")
    }

    func testCtrlCStopsTheBenchAndDropsItsSchema() async throws {
        let database = try await makeDatabase()
        let cli = CLIRunner(databaseURL: database.url, key: nil)
        let (process, errors) = try await startLongBench(cli, database: database)
        let pressed = Date()
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertLessThan(Date().timeIntervalSince(pressed), 15, "it stops before the next turn, not at the end")
        XCTAssertTrue(stderr.contains("stopping before the next turn"), stderr)
        XCTAssertTrue(stderr.contains("interrupted; the scratch schema token_vault_bench_"), stderr)
        try await assertNoScratchSchemaLeft(database, "the scratch schema is dropped")
    }

    func testASchemaThatCannotBeDroppedIsNamedWithTheStatementToDropIt() async throws {
        let database = try await makeDatabase()
        var cli = CLIRunner(databaseURL: database.url, key: nil)
        cli.environment["PGOPTIONS"] = "-c lock_timeout=1000"  // the bench's DROP SCHEMA gives up after 1 s
        let (process, errors) = try await startLongBench(cli, database: database)
        // Another session holds a lock on the bench's table, so that DROP SCHEMA cannot take it.
        let schemas = try await AdminSQL.query(
            "SELECT schemaname FROM pg_tables WHERE schemaname LIKE 'token_vault_bench_%'", url: database.url)
        let schema = try XCTUnwrap(schemas.first?[0])
        let holder = try PGConnection(conninfo: database.url, applicationName: "lock-holder")
        try holder.execute(script: "BEGIN; LOCK TABLE \(schema).oauth_tokens IN ACCESS SHARE MODE")
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertTrue(stderr.contains("could not drop the scratch schema \(schema)"), stderr)
        XCTAssertTrue(stderr.contains("DROP SCHEMA \(schema) CASCADE"), stderr)
        XCTAssertFalse(stderr.contains("was dropped"), stderr)
        try holder.execute(script: "ROLLBACK")
    }

    func testCtrlCDuringTheLastTurnStillStopsWithoutAReport() async throws {
        let database = try await makeDatabase()
        let cli = CLIRunner(databaseURL: database.url, key: nil)
        // One round: the vault's 1-second turn, then the baseline's, the last; Ctrl-C lands in the last.
        let (process, output, errors) = try cli.start([
            "bench", "--only", "seal_open", "--duration", "2", "--rounds", "1",
        ])
        try await Task.sleep(nanoseconds: 1_500_000_000)
        kill(process.processIdentifier, SIGINT)
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertEqual(stdout, "", "no report after Ctrl-C")
    }

    /// Starts a bench that runs for a minute and returns once its scratch schema holds the vault's table.
    /// Fails unless every `token_vault_bench_*` schema in `database` was dropped.
    private func assertNoScratchSchemaLeft(
        _ database: TestDatabase, _ message: String, file: StaticString = #filePath, line: UInt = #line
    ) async throws {
        let leftovers = try await AdminSQL.query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'token_vault_bench_%'", url: database.url)
        XCTAssertEqual(leftovers.count, 0, message, file: file, line: line)
    }

    private func startLongBench(_ cli: CLIRunner, database: TestDatabase) async throws -> (Process, Pipe) {
        let (process, _, errors) = try cli.start([
            "bench", "--only", "put", "--duration", "60", "--rounds", "20", "--clients", "20",
        ])
        try await waitForPositiveCount(
            "SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'token_vault_bench_%'", url: database.url,
            interval: 20_000_000)
        return (process, errors)
    }
}
