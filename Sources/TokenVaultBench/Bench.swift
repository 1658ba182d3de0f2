import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token-vault-bench",
        abstract: "Measure the vault against raw libsodium and libpq doing the same work, side by side.",
        discussion: """
            Points at DATABASE_URL (or the PG* variables). Creates its own scratch schema, token_vault_bench_*, \
            and drops it at the end, or on Ctrl-C before the next turn; touches nothing else. Needs no key: it \
            makes a throwaway one.

            Each figure alternates vault and baseline runs (in ABBA order, so use an even number of rounds) so \
            that machine noise hits both, and gives a 95% interval for its typical round's ratio from the \
            spread of the rounds. \
            On a noisy machine, give it more time (--duration 12 --rounds 12) before reading a miss as real. See \
            docs/performance.md for what each line measures and what limits it.

            Examples:
              token-vault bench
              token-vault bench --json --duration 5 --rows 100000
              token-vault bench --only rotate --rows 1000000
              token-vault bench --only put,get --calibrate
              token-vault bench --runs 6 --only put,get,access_token
            """)

    @Option(help: "Seconds of timed turns per figure, split across the alternating rounds.")
    var duration: Double = 5

    @Option(help: "Vault/baseline alternations per figure (even: half of them start with the vault).")
    var rounds = 6

    @Option(help: "Rows for the import and rotate figures (and refresh_due, up to 10,000).")
    var rows = 20_000

    @Option(help: "Distinct (client, provider) rows that put/get/access_token cycle through (at least 4).")
    var clients = 1000

    @Option(help: "Concurrent callers in the stampede.")
    var callers = 50

    @Option(
        help: ArgumentHelp(
            "Run only these figures, comma-separated (seal_open, put, get, access_token, import, rotate, stampede, "
                + "isolation, refresh_due, audit_put, audit_read)."))
    var only: String?

    @Flag(
        help: ArgumentHelp(
            "Also time put, get and access_token's baselines with pure CPU work (no memory, no allocation) added to "
                + "each call, lasting as long as the vault's work beyond the baseline's, measured warm: what the "
                + "vault's work would cost here if it ran at its warm speed. Doubles those figures' time."))
    var calibrate = false

    @Option(
        name: .customLong("calibrate-ns"),
        help: ArgumentHelp(
            "With --calibrate: add this many nanoseconds of work per call (0 to 1000000) instead.", valueName: "ns"))
    var calibrateNanoseconds: Double?

    @Option(
        help: ArgumentHelp(
            "Run the whole bench this many times in a row (1 to 100), each run in its own scratch schema, then "
                + "summarise each figure over the runs: mean ratio, standard deviation, range, runs below target.",
            valueName: "n"))
    var runs = 1

    @Flag(help: "Print one JSON object with a results array (with --runs above 1: runs, summary).")
    var json = false

    func validate() throws {
        guard duration > 0, duration <= 3600 else {
            throw ValidationError("--duration must be more than 0 and at most 3600 seconds.")
        }
        guard (1...100).contains(rounds) else { throw ValidationError("--rounds must be 1 to 100.") }
        guard (1...100).contains(runs) else {
            throw ValidationError("--runs must be 1 to 100 (the number of times the whole bench runs).")
        }
        guard (1...100_000_000).contains(rows) else { throw ValidationError("--rows must be 1 to 100000000.") }
        guard (4...1_000_000).contains(clients) else {
            // Each of the 4 workers needs rows of its own.
            throw ValidationError("--clients must be 4 to 1000000 (each of the 4 connections' workers needs a row).")
        }
        guard (1...10_000).contains(callers) else { throw ValidationError("--callers must be 1 to 10000.") }
        if let calibrateNanoseconds {
            guard calibrate else { throw ValidationError("--calibrate-ns needs --calibrate.") }
            guard calibrateNanoseconds >= 0, calibrateNanoseconds <= 1_000_000 else {
                throw ValidationError("--calibrate-ns must be 0 to 1000000 nanoseconds.")
            }
        }
        if let only {
            let figures = Set(only.split(separator: ",").map(String.init))
            let unknown = figures.subtracting(BenchRunner.names)
            if !unknown.isEmpty {
                throw ValidationError("--only: unknown figure \(unknown.sorted().joined(separator: ", ")).")
            }
            if calibrate, figures.isDisjoint(with: ["put", "get", "access_token"]) {
                throw ValidationError("--calibrate applies to put, get and access_token; --only names none of them.")
            }
        }
    }

    func run() async throws {
        if rounds > 1 && rounds % 2 == 1 {
            Self.say(
                "note: with an odd number of rounds, one side starts one round more than the other; use an even "
                    + "number (ABBA order).")
        }
        #if DEBUG
        Self.say(
            "note: this is a debug build; its figures are not representative. Build with `swift build -c release` "
                + "and run .build/release/token-vault bench.")
        #endif
        let settings = BenchRunner.Settings(
            databaseURL: ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "", duration: duration,
            rounds: rounds, rows: rows, clients: clients, callers: callers,
            only: only.map { Set($0.split(separator: ",").map(String.init)) } ?? Set(BenchRunner.names),
            calibrate: calibrate, calibrateNanoseconds: calibrateNanoseconds,
            progress: json ? { _ in } : { Self.say($0) })
        let stop = StopRequest(message: "")
        var schema = ""
        var reports: [BenchReport] = []
        for run in 1...runs {
            var runner = BenchRunner(settings: settings)
            if let last = reports.indices.last, stop.isRequested {
                // Ctrl-C after the last run's last turn, while it dropped its schema: no more runs, and no report.
                Self.say("interrupted after run \(last + 1) of \(runs); its scratch schema \(schema) was dropped.")
                throw ExitCode(130)
            }
            schema = runner.schema
            stop.message =
                "bench: stopping before the next turn and dropping the scratch schema \(schema) (Ctrl-C again to "
                + "quit at once and leave it; then: DROP SCHEMA \(schema) CASCADE)…"
            runner.stop = stop
            if runs > 1 { Self.say("run \(run) of \(runs)") }
            reports.append(try await Self.measure(runner))
        }
        if runs == 1 {
            if json {
                try CLI.printJSON(reports[0])
            } else {
                print(reports[0].table())
            }
            return
        }
        let summary = BenchSummary(reports: reports)
        if json {
            try CLI.printJSON(BenchRuns(runs: reports, summary: summary))
        } else {
            for (index, report) in reports.enumerated() {
                print("run \(index + 1) of \(runs):\n\(report.table())\n")
            }
            print(summary.table())
        }
    }

    /// One run of the bench, in its own scratch schema; Ctrl-C and a schema left behind end the command.
    private static func measure(_ runner: BenchRunner) async throws -> BenchReport {
        do {
            return try await runner.run()
        } catch is BenchRunner.Interrupted {
            Self.say("interrupted; the scratch schema \(runner.schema) was dropped.")
            throw ExitCode(130)
        } catch let left as BenchRunner.SchemaLeft {
            Self.say(
                "could not drop the scratch schema \(left.schema): \(left.dropError). Drop it yourself: "
                    + "DROP SCHEMA \(left.schema) CASCADE")
            if left.cause is BenchRunner.Interrupted { throw ExitCode(130) }
            throw CLI.fail(left.cause ?? left.dropError)
        } catch {
            throw CLI.fail(error)
        }
    }

    /// One line on standard error, after `bench: `.
    static func say(_ line: String) {
        FileHandle.standardError.write(Data("bench: \(line)\n".utf8))
    }
}
