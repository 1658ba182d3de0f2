import Foundation
import Synchronization
import TokenVault
import TokenVaultTesting
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// What docs/operations.md says about high availability, kept true: a vault with a multi-host connection string
/// (`target_session_attrs=read-write`) writing under load while its primary crashes and the synchronous standby is
/// promoted keeps every acknowledged write, and the same `Vault` goes on working without a restart.
final class FailoverTests: XCTestCase {
    private var servers: [TemporaryPostgres] = []

    override func tearDown() async throws {
        for server in servers.reversed() {
            try? server.signalServer(SIGCONT)  // a frozen server cannot be stopped
            server.stop()
        }
        servers = []
        try await super.tearDown()
    }

    /// One row a writer stored into: a writer moves to a new row after each failure, so that what it writes to
    /// the new primary does not hide what the old one acknowledged.
    struct Row: Sendable {
        let client: String
        /// The last value whose store returned (0: none); every value before it was acknowledged too.
        var acknowledged = 0
        /// The last value a store was attempted with, acknowledged or not.
        var attempted = 0
    }

    /// What one writer saw: the values it stored (1, 2, 3, … in turn), row by row.
    struct Writer: Sendable {
        let name: String
        var rows: [Row]
        var failures: [String: Int] = [:]
        /// Stores that returned.
        var acknowledged = 0
        /// When the new primary first acknowledged a write of this writer.
        var firstOnNewPrimary: Date?
        /// Writes the new primary acknowledged.
        var acknowledgedByNewPrimary = 0
    }

    /// Shared between the test and its writers: when to stop, and when the old primary was gone.
    final class Progress: Sendable {
        let stop = Atomic<Bool>(false)
        let oldPrimaryGone = Mutex<Date?>(nil)
    }

    func testAcknowledgedWritesSurviveAFailoverAndTheSameVaultCarriesOn() async throws {
        // Synchronous replication: a commit returns once the standby has it, so "acknowledged" means "on both".
        let primary = try TemporaryPostgres.start(
            port: 5442, settings: ["synchronous_standby_names='*'", "synchronous_commit=on"])
        servers.append(primary)
        // After the freeze below, a standby acts on the promotion only at its next WAL retry: 5 s by default.
        let standby = try primary.startStandby(port: 5443, settings: ["wal_retrieve_retry_interval=100ms"])
        servers.append(standby)
        var configuration = VaultConfiguration(
            databaseURL: "host=\(primary.directory),\(standby.directory) port=\(primary.port),\(standby.port) "
                + "user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=2",
            keyring: try Keyring(current: .generate()), maximumConnections: 4)
        configuration.statementTimeout = 5
        let vault = try Vault(configuration: configuration)
        try await vault.migrate()  // its commit waits for the standby: replication is running once it returns

        let progress = Progress()
        async let writers = Self.write(with: vault, writers: 4, progress: progress)
        try await Task.sleep(nanoseconds: 2_000_000_000)
        // The standby falls behind (frozen for a second), and the primary crashes meanwhile: with asynchronous
        // replication the writes of that second would be acknowledged and lost; with synchronous replication they
        // wait for the standby, and end with the primary, unacknowledged.
        try standby.signalServer(SIGSTOP)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let crashed = Date()
        try await blocking { primary.stop() }  // pg_ctl stop -m immediate: a crash, as far as clients can tell
        try standby.signalServer(SIGCONT)
        let promoting = Date()
        progress.oldPrimaryGone.withLock { $0 = promoting }
        try await blocking { try standby.promote() }
        let promoted = Date()
        // The writers go on for a while on the new primary.
        try await Task.sleep(nanoseconds: 2_000_000_000)
        progress.stop.store(true, ordering: .relaxed)
        let results = await writers

        var acknowledged = 0
        var behind = 0
        var outages: [TimeInterval] = []
        for writer in results {
            acknowledged += writer.acknowledged
            for row in writer.rows where row.attempted > 0 {
                // Every acknowledged write is there: the row holds its last acknowledged value, or a later one
                // whose store failed after the server had applied it (its outcome was unknown to the caller).
                let value = try await Self.storedValue(of: row.client, in: vault)
                if value < row.acknowledged { behind += 1 }
                XCTAssertGreaterThanOrEqual(value, row.acknowledged, "\(row)")
                XCTAssertLessThanOrEqual(value, row.attempted, "\(row)")
            }
            XCTAssertGreaterThan(writer.acknowledgedByNewPrimary, 0, "\(writer.name) never wrote to the new primary")
            if let first = writer.firstOnNewPrimary { outages.append(first.timeIntervalSince(crashed)) }
        }
        let failures = results.reduce(into: [String: Int]()) { total, writer in
            total.merge(writer.failures, uniquingKeysWith: +)
        }
        print(
            "failover: \(acknowledged) writes acknowledged by 4 writers into "
                + "\(results.map(\.rows.count).reduce(0, +)) rows; rows missing an acknowledged write: \(behind); failed calls by code: \(failures); primary stopped in "
                + "\(format(promoting.timeIntervalSince(crashed))) s, standby promoted in "
                + "\(format(promoted.timeIntervalSince(promoting))) s; from the crash to each writer's first write "
                + "acknowledged by the new primary: \(outages.sorted().map(format).joined(separator: ", ")) s")
        XCTAssertGreaterThan(acknowledged, 0)
        XCTAssertTrue(Set(failures.keys).isSubset(of: ["connectionFailed"]), "\(failures)")

        // The same vault, no restart: new rows and old ones.
        try await vault.store(sampleTokens(access: "after"), client: "after-failover", provider: "zoho_crm")
        let after = try await vault.fetch(client: "after-failover", provider: "zoho_crm")
        XCTAssertEqual(after.accessToken?.reveal(), "after")
        await vault.shutdown()
    }

    /// `writers` tasks, each storing 1, 2, 3, … into rows of its own as fast as the vault acknowledges, until told
    /// to stop; after a failure, a writer pauses 20 ms and moves to a new row.
    private static func write(with vault: Vault, writers: Int, progress: Progress) async -> [Writer] {
        await withTaskGroup(of: Writer.self) { group in
            for index in 0..<writers {
                group.addTask {
                    var writer = Writer(name: "writer-\(index)", rows: [Row(client: "writer-\(index)-0")])
                    var value = 0
                    while !progress.stop.load(ordering: .relaxed) {
                        value += 1
                        let row = writer.rows.count - 1
                        writer.rows[row].attempted = value
                        do {
                            try await vault.store(
                                sampleTokens(access: "\(value)"), client: writer.rows[row].client,
                                provider: "zoho_crm")
                            writer.rows[row].acknowledged = value
                            writer.acknowledged += 1
                            let now = Date()
                            if let gone = progress.oldPrimaryGone.withLock({ $0 }), now > gone {
                                writer.acknowledgedByNewPrimary += 1
                                if writer.firstOnNewPrimary == nil { writer.firstOnNewPrimary = now }
                            }
                        } catch {
                            writer.failures[(error as? VaultError).map { "\($0.code)" } ?? "\(error)", default: 0] += 1
                            writer.rows.append(Row(client: "\(writer.name)-\(writer.rows.count)"))
                            try? await Task.sleep(nanoseconds: 20_000_000)
                        }
                    }
                    return writer
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// The value stored for `client`, 0 when it has no row (none of its writes was applied).
    private static func storedValue(of client: String, in vault: Vault) async throws -> Int {
        do {
            let stored = try await vault.fetch(client: client, provider: "zoho_crm")
            return Int(stored.accessToken?.reveal() ?? "") ?? -1
        } catch {
            guard error.code == .notFound else { throw error }
            return 0
        }
    }

    private func format(_ seconds: TimeInterval) -> String { String(format: "%.2f", seconds) }

    /// Runs blocking work (pg_ctl) off the cooperative thread pool, which the writers need.
    private func blocking(_ work: @escaping @Sendable () throws -> Void) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
        }
    }
}
