import Foundation
import Synchronization
import TokenVault
import TokenVaultTesting

/// `isolation`: how much a slow provider slows reads of other accounts. The latency of `accessToken` on valid
/// rows, with no refresh running (quiet) and while `refreshing` other rows refresh against a token endpoint that
/// takes `providerSeconds` to answer (busy), on the same pool. The readers pause 2 ms between calls, so that the
/// figure measures waiting, not a saturated CPU.
struct IsolationResult: Encodable {
    let connections: Int
    let readers: Int
    let refreshing: Int
    let providerSeconds: Double
    let quietCalls: Int
    let busyCalls: Int
    let refreshes: Int
    let quietP50Milliseconds: Double
    let quietP99Milliseconds: Double
    let busyP50Milliseconds: Double
    let busyP99Milliseconds: Double
    /// Busy p99 over quiet p99: the figure's target is at most `target`.
    let ratio: Double
    let target: Double

    enum CodingKeys: String, CodingKey {
        case connections, readers, refreshing, refreshes, ratio, target
        case providerSeconds = "provider_seconds", quietCalls = "quiet_calls", busyCalls = "busy_calls"
        case quietP50Milliseconds = "quiet_p50_ms", quietP99Milliseconds = "quiet_p99_ms"
        case busyP50Milliseconds = "busy_p50_ms", busyP99Milliseconds = "busy_p99_ms"
    }

    var line: String {
        String(
            format: "isolation: accessToken on valid rows, %d readers, pool of %d: p50/p99 %.2f/%.2f ms quiet, "
                + "%.2f/%.2f ms while %d other rows refresh at a %.0f s provider (%d refreshes); p99 ratio %.2f "
                + "(target ≤ %.1f) %@",
            readers, connections, quietP50Milliseconds, quietP99Milliseconds, busyP50Milliseconds,
            busyP99Milliseconds, refreshing, providerSeconds, refreshes, ratio, target,
            ratio <= target ? "ok" : "ABOVE TARGET")
    }

    /// The `fraction` quantile of `samples` (nearest rank), in milliseconds.
    static func quantile(_ samples: [Duration], _ fraction: Double) -> Double {
        guard !samples.isEmpty else { return .nan }
        let sorted = samples.sorted()
        let rank = min(sorted.count - 1, max(0, Int((fraction * Double(sorted.count)).rounded(.up)) - 1))
        let (seconds, attoseconds) = sorted[rank].components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}

extension BenchRunner {
    /// Rows refreshing at once in the busy turns: as many as the pool has connections, so that a refresh that held
    /// a connection during its provider call would leave none for the readers.
    static let isolationConnections = 4
    static let isolationProviderSeconds = 2.0
    /// Seconds per turn: half of `--duration`, and at least 2.5 s, so that refreshes are in flight throughout a
    /// busy turn. Four turns, quiet and busy in ABBA order.
    var isolationTurn: Double { max(2.5, settings.duration / 2) }
    /// The pause of each reader between two calls.
    static let isolationReadInterval = Duration.milliseconds(2)

    func isolation(keyring: Keyring) async throws -> IsolationResult {
        let endpoint = try FakeTokenEndpoint.start()
        defer { endpoint.stop() }
        endpoint.setLatency(Self.isolationProviderSeconds)
        let name = "isolation"
        // No rate limit: the same rows refresh again and again.
        let provider = OAuthProvider(
            name: name, tokenURL: endpoint.tokenURL, clientID: endpoint.clientID,
            clientSecret: Secret(endpoint.clientSecret))
        let connections = Self.isolationConnections
        let vault = try vault(connections: connections, keyring: keyring, providers: [provider])
        let readers = connections
        let readerRows = (0..<200).map { "isolation-reader-\($0)" }
        let refreshRows = (0..<connections).map { "isolation-refresh-\($0)" }
        // The bench's own scaffolding (expiring the refresh rows again) goes through a connection of its own, not
        // the vault's pool.
        let raw = try await RawConnection.connect(url: settings.databaseURL, schema: schema)
        do {
            try await vault.importTokens(
                readerRows.map { ImportRecord(client: $0, provider: name, tokens: benchTokens()) })
            for row in refreshRows {
                endpoint.addRefreshToken("rt-\(row)")
                try await vault.store(
                    TokenSet(
                        accessToken: Secret("expired"), refreshToken: Secret("rt-\(row)"),
                        expiresAt: Date(timeIntervalSinceNow: -60)),
                    client: row, provider: name)
            }
            var quiet: [Duration] = []
            var busy: [Duration] = []
            var refreshes = 0
            for busyTurn in [false, true, true, false] {
                try checkStop()
                if busyTurn {
                    let (samples, done) = try await readWhileRefreshing(
                        vault, readers: readers, readerRows: readerRows, refreshRows: refreshRows,
                        provider: name, endpoint: endpoint, raw: raw)
                    busy += samples
                    refreshes += done
                } else {
                    quiet += try await read(vault, readers: readers, rows: readerRows, provider: name)
                }
            }
            await vault.shutdown()
            let quietP99 = IsolationResult.quantile(quiet, 0.99)
            let busyP99 = IsolationResult.quantile(busy, 0.99)
            return IsolationResult(
                connections: connections, readers: readers, refreshing: refreshRows.count,
                providerSeconds: Self.isolationProviderSeconds, quietCalls: quiet.count, busyCalls: busy.count,
                refreshes: refreshes, quietP50Milliseconds: IsolationResult.quantile(quiet, 0.5),
                quietP99Milliseconds: quietP99, busyP50Milliseconds: IsolationResult.quantile(busy, 0.5),
                busyP99Milliseconds: busyP99, ratio: busyP99 / quietP99, target: 2.0)
        } catch {
            await vault.shutdown()
            throw error
        }
    }

    /// `readers` tasks reading valid rows for one turn; every call's latency.
    private func read(
        _ vault: Vault, readers: Int, rows: [String], provider: String, until stop: ContinuousClock.Instant? = nil
    ) async throws -> [Duration] {
        let clock = ContinuousClock()
        let end = stop ?? clock.now + .seconds(isolationTurn)
        return try await withThrowingTaskGroup(of: [Duration].self) { group in
            for reader in 0..<readers {
                group.addTask {
                    var samples: [Duration] = []
                    var index = reader
                    while clock.now < end {
                        let client = rows[index % rows.count]
                        index += readers
                        let started = clock.now
                        let token = try await vault.accessToken(client: client, provider: provider)
                        samples.append(clock.now - started)
                        guard !token.refreshed else {
                            throw VaultError(.database, "bench: a reader's valid row was refreshed")
                        }
                        // Paced, as a service's requests arrive: a saturated loop would measure the machine's CPU
                        // contention, not whether a read waits for a refresh.
                        try await Task.sleep(for: Self.isolationReadInterval)
                    }
                    return samples
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// One busy turn: each refresh row is refreshed and expired again, again and again, while the readers read.
    /// The rows start a provider's answer apart divided by their number, as refreshes in a service do not all end
    /// at once. The readers start once every refresh is at the provider; the refreshes go on until they stop.
    private func readWhileRefreshing(
        _ vault: Vault, readers: Int, readerRows: [String], refreshRows: [String], provider: String,
        endpoint: FakeTokenEndpoint, raw: RawConnection
    ) async throws -> (samples: [Duration], refreshes: Int) {
        let clock = ContinuousClock()
        let stagger = Self.isolationProviderSeconds / Double(refreshRows.count)
        let done = Flag()
        let before = endpoint.startedCount
        return try await withThrowingTaskGroup(of: (samples: [Duration], refreshes: Int).self) { group in
            for (index, row) in refreshRows.enumerated() {
                group.addTask {
                    try await Task.sleep(for: .seconds(stagger * Double(index)))
                    var refreshes = 0
                    while !done.isSet {
                        let token = try await vault.accessToken(client: row, provider: provider)
                        guard token.refreshed else {
                            throw VaultError(.database, "bench: a refresh row was not refreshed")
                        }
                        refreshes += 1
                        try await raw.execute(
                            "UPDATE oauth_tokens SET token_expiry = now() - interval '1 minute' "
                                + "WHERE client_id = '\(row)' AND provider = '\(provider)'")
                    }
                    return ([], refreshes)
                }
            }
            // Every refresh at the provider before the readers start.
            let deadline = clock.now + .seconds(10)
            while endpoint.startedCount < before + refreshRows.count && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            let samples = try await read(
                vault, readers: readers, rows: readerRows, provider: provider,
                until: clock.now + .seconds(isolationTurn))
            done.set()
            var refreshes = 0
            for try await part in group { refreshes += part.refreshes }
            return (samples, refreshes)
        }
    }
}

/// A flag set once, read from several tasks.
private final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
