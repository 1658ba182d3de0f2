import Foundation
import Synchronization
import TokenVault
import TokenVaultTesting

#if canImport(Glibc)
import Glibc
#endif

/// `refresh_due`: N rows expiring, two `token-vault refresh-due` processes at once against a local token endpoint
/// (in this process). Every row must be refreshed by exactly one provider call; the figure is rows per second and
/// each refresher's peak memory.
struct RefreshDueResult: Encodable {
    let rows: Int
    let refreshers: Int
    let concurrency: Int
    let providerCalls: Int
    /// Rows each process reported refreshed (together: the rows, less those refreshed twice, which is none).
    let refreshedByProcess: [Int]
    let seconds: Double
    let rowsPerSecond: Double
    /// The larger of the two refresher processes' peak resident memory, in bytes (`getrusage`'s children).
    let refresherPeakResident: Int
    let target: Double

    enum CodingKeys: String, CodingKey {
        case rows, refreshers, concurrency, seconds, target
        case providerCalls = "provider_calls", rowsPerSecond = "rows_per_second"
        case refreshedByProcess = "refreshed_by_process", refresherPeakResident = "refresher_peak_resident_bytes"
    }

    var line: String {
        String(
            format: "refresh_due: %d rows expiring, %d refresh-due processes at once (concurrency %d each, refreshed "
                + "%@) -> %d provider calls (%@), %.0f rows/s (target ≥ %.0f) %@, refresher peak memory %d MiB",
            rows, refreshers, concurrency, refreshedByProcess.map(String.init).joined(separator: " + "),
            providerCalls, providerCalls == rows ? "one per row" : "NOT ONE PER ROW", rowsPerSecond, target,
            rowsPerSecond >= target ? "ok" : "BELOW TARGET", refresherPeakResident / 1_048_576)
    }
}

extension BenchRunner {
    /// Rows for `refresh_due`: 10,000, or `--rows` when smaller.
    var refreshDueRows: Int { min(settings.rows, 10_000) }

    func refreshDue(keyring: Keyring) async throws -> RefreshDueResult {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        // The CLI's Zoho provider; each row has its own refresh token, so Zoho's cap (10 per refresh token per 10
        // minutes) allows every row its one refresh.
        let name = "zoho_crm"
        let provider = OAuthProvider.zoho(
            name, clientID: endpoint.clientID, clientSecret: Secret(endpoint.clientSecret),
            accountsURL: endpoint.baseURL)
        let rows = refreshDueRows
        let setup = try vault(connections: 4, keyring: keyring, providers: [provider])
        var records: [ImportRecord] = []
        records.reserveCapacity(rows)
        for index in 0..<rows {
            let refresh = "rt-due-\(index)"
            endpoint.addRefreshToken(refresh)
            records.append(
                ImportRecord(
                    client: "due-\(index)", provider: name,
                    tokens: TokenSet(
                        accessToken: Secret("expired"), refreshToken: Secret(refresh),
                        expiresAt: Date(timeIntervalSinceNow: -60))))
        }
        try await setup.importTokens(records)
        records = []
        await setup.shutdown()
        try checkStop()

        // Two processes, as two hosts' cron jobs or systemd timers would run them.
        let concurrency = 16
        let environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "DATABASE_URL": settings.databaseURL, "TOKEN_VAULT_SCHEMA": schema,
            "TOKEN_VAULT_KEY": keyring.current.exportBase64(), "TOKEN_VAULT_POOL_SIZE": "4",
            "ZOHO_CLIENT_ID": endpoint.clientID, "ZOHO_CLIENT_SECRET": endpoint.clientSecret,
            "ZOHO_ACCOUNTS_URL": endpoint.baseURL.absoluteString,
        ]
        let binary = try Self.cliBinary()
        let started = Date()
        let outputs = try await withThrowingTaskGroup(of: (Int32, Data, Data).self) { group in
            for _ in 0..<2 {
                group.addTask {
                    try await Self.run(
                        binary, ["refresh-due", "--concurrency", String(concurrency), "--json"],
                        environment: environment)
                }
            }
            return try await group.reduce(into: [(Int32, Data, Data)]()) { $0.append($1) }
        }
        let seconds = Date().timeIntervalSince(started)
        var refreshed: [Int] = []
        for (status, stdout, stderr) in outputs {
            let report = try? JSONDecoder().decode(RefreshDueReport.self, from: stdout)
            guard status == 0, let report, report.failed.isEmpty else {
                throw VaultError(
                    .providerError,
                    "bench: a refresh-due process exited \(status): \(String(decoding: stderr, as: UTF8.self))")
            }
            refreshed.append(report.refreshed)
        }
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        return RefreshDueResult(
            rows: rows, refreshers: outputs.count, concurrency: concurrency, providerCalls: endpoint.requestCount,
            refreshedByProcess: refreshed, seconds: seconds, rowsPerSecond: Double(rows) / seconds,
            refresherPeakResident: usage.ru_maxrss * 1024, target: 1000)
    }

    /// The `token-vault` binary built beside this one (`swift build -c release` builds both).
    static func cliBinary() throws -> URL {
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let sibling = here.deletingLastPathComponent().appendingPathComponent("token-vault")
        guard FileManager.default.isExecutableFile(atPath: sibling.path) else {
            throw VaultError(
                .invalidInput,
                "refresh_due runs the token-vault command beside this bench, and there is none at \(sibling.path): "
                    + "build it too (swift build -c release).")
        }
        return sibling
    }

    /// Runs `binary` to its end off the cooperative pool; its exit status, stdout and stderr.
    static func run(
        _ binary: URL, _ arguments: [String], environment: [String: String]
    ) async throws -> (Int32, Data, Data) {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let stderrData = LockedBytes()
                let group = DispatchGroup()
                DispatchQueue.global().async(group: group) {
                    stderrData.set(errors.fileHandleForReading.readDataToEndOfFile())
                }
                let stdout = output.fileHandleForReading.readDataToEndOfFile()
                group.wait()
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, stdout, stderrData.value))
            }
        }
    }

    /// The resident set size now, from `/proc/self/statm` (0 where there is none).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Bytes handed from one thread to another.
private final class LockedBytes: Sendable {
    private let stored = Mutex(Data())
    var value: Data { stored.withLock { $0 } }
    func set(_ data: Data) { stored.withLock { $0 = data } }
}
