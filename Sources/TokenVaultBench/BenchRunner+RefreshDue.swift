import Foundation
import TokenVault
import TokenVaultTesting

#if canImport(Glibc)
import Glibc
#endif

/// `refresh_due`: N rows expiring, two refreshers running `refreshDue` at once against a local token endpoint.
/// Every row must be refreshed by exactly one provider call; the figure is rows per second and memory.
struct RefreshDueResult: Encodable {
    let rows: Int
    let refreshers: Int
    let concurrency: Int
    let providerCalls: Int
    let seconds: Double
    let rowsPerSecond: Double
    /// The bench process's resident memory before and after the pass, in bytes (Linux `/proc/self/statm`).
    let residentBefore: Int
    let residentAfter: Int
    let target: Double

    enum CodingKeys: String, CodingKey {
        case rows, refreshers, concurrency, seconds, target
        case providerCalls = "provider_calls", rowsPerSecond = "rows_per_second"
        case residentBefore = "resident_bytes_before", residentAfter = "resident_bytes_after"
    }

    var line: String {
        String(
            format: "refresh_due: %d rows expiring, %d refreshers at once (concurrency %d each) -> %d provider "
                + "calls (%@), %.0f rows/s (target ≥ %.0f) %@, resident memory %d -> %d MiB",
            rows, refreshers, concurrency, providerCalls, providerCalls == rows ? "one per row" : "NOT ONE PER ROW",
            rowsPerSecond, target, rowsPerSecond >= target ? "ok" : "BELOW TARGET", residentBefore / 1_048_576,
            residentAfter / 1_048_576)
    }
}

extension BenchRunner {
    /// Rows for `refresh_due`: 10,000, or `--rows` when smaller.
    var refreshDueRows: Int { min(settings.rows, 10_000) }

    func refreshDue(keyring: Keyring) async throws -> RefreshDueResult {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        let name = "refresh_due"
        // No rate limit: one refresh per row, each with its own refresh token.
        let provider = OAuthProvider(
            name: name, tokenURL: endpoint.tokenURL, clientID: endpoint.clientID,
            clientSecret: Secret(endpoint.clientSecret))
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

        // Two refreshers with their own pools and single flights, as two processes would have.
        let concurrency = 16
        let refreshers = try (0..<2).map { _ in try vault(connections: 4, keyring: keyring, providers: [provider]) }
        let before = Self.residentBytes()
        let started = Date()
        let reports = try await withThrowingTaskGroup(of: RefreshDueReport.self) { group in
            for refresher in refreshers {
                group.addTask { try await refresher.refreshDue(concurrency: concurrency) }
            }
            return try await group.reduce(into: [RefreshDueReport]()) { $0.append($1) }
        }
        let seconds = Date().timeIntervalSince(started)
        let after = Self.residentBytes()
        for refresher in refreshers { await refresher.shutdown() }
        let failed = reports.flatMap(\.failed)
        guard failed.isEmpty else {
            throw VaultError(.providerError, "bench: refresh_due failures \(failed)")
        }
        return RefreshDueResult(
            rows: rows, refreshers: refreshers.count, concurrency: concurrency, providerCalls: endpoint.requestCount,
            seconds: seconds, rowsPerSecond: Double(rows) / seconds, residentBefore: before, residentAfter: after,
            target: 1000)
    }

    /// The resident set size now, from `/proc/self/statm` (0 where there is none).
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let pages = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
