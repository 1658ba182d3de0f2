import Foundation
import Logging
import TokenVaultTesting
import XCTest

@testable import TokenVault

final class ConnectionPoolTests: DatabaseTestCase {
    /// Polls until `condition` holds, for at most 10 s.
    private func waitUntil(
        _ what: String, file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool
    ) async throws {
        let deadline = Date().addingTimeInterval(10)
        while !condition() {
            guard Date() < deadline else {
                XCTFail("timed out waiting until \(what)", file: file, line: line)
                throw CancellationError()
            }
            try await Task.sleep(nanoseconds: 5_000_000)
        }
    }

    func testACancelledWaiterThrowsPromptlyAndThePoolStillWorks() async throws {
        let database = try await makeDatabase()
        let pool = makePool(database.url, maximumConnections: 1)
        // The holder takes the only connection and keeps it until told to let go.
        let (holder, letGo) = await holdAConnection(pool)
        XCTAssertEqual(pool.counts.open, 1)

        let waiter = Task { try await selectOne(pool) }
        try await waitUntil("the second task waits") { pool.counts.waiting == 1 }
        let cancelled = Date()
        waiter.cancel()
        await assertVaultError(.cancelled) { try await waiter.value }
        XCTAssertLessThan(Date().timeIntervalSince(cancelled), 2, "the cancelled waiter should throw at once")
        XCTAssertEqual(pool.counts.waiting, 0, "the cancelled waiter should have left the queue")
        XCTAssertEqual(pool.counts.open, 1)

        letGo()
        try await holder.value
        XCTAssertEqual(pool.counts.idle, 1, "the held connection should be back in the pool")
        let value = try await selectOne(pool)
        XCTAssertEqual(value, "1")
        XCTAssertEqual(pool.counts.open, 1, "no connection leaked or was opened twice")
        await pool.shutdown()
        XCTAssertEqual(pool.counts.open, 0)
    }

    func testATaskCancelledBeforeAcquiringTakesNothing() async throws {
        let database = try await makeDatabase()
        let pool = makePool(database.url, maximumConnections: 1)
        let task = Task {
            while !Task.isCancelled { await Task.yield() }
            return try await selectOne(pool)
        }
        task.cancel()
        await assertVaultError(.cancelled) { try await task.value }
        XCTAssertEqual(pool.counts.open, 0, "a cancelled task should not open a connection")
        let value = try await selectOne(pool)
        XCTAssertEqual(value, "1")
        await pool.shutdown()
    }

    /// Grants and cancellations racing: every task ends, and afterwards the pool is whole (no lost connection
    /// or slot, nobody left waiting). Cancellations are spread over the time the queue drains, so that some land
    /// just after a waiter was handed a connection.
    func testCancellationsRacingWithGrantsLoseNothing() async throws {
        let database = try await makeDatabase()
        let pool = makePool(database.url, maximumConnections: 2)
        var outcomes = (succeeded: 0, cancelled: 0)
        for _ in 0..<5 {
            let tasks = (0..<60).map { _ in
                Task {
                    try await pool.withConnection(idempotent: true) { connection in
                        try connection.queryText("SELECT 1").first?.first ?? nil
                    }
                }
            }
            for task in tasks.shuffled() {
                try await Task.sleep(nanoseconds: 50_000)
                task.cancel()
            }
            for task in tasks {
                switch await task.result {
                case .success:
                    outcomes.succeeded += 1
                case .failure(let error):
                    XCTAssertEqual((error as? VaultError)?.code, .cancelled, "\(error)")
                    outcomes.cancelled += 1
                }
            }
            let counts = pool.counts
            XCTAssertEqual(counts.waiting, 0)
            XCTAssertEqual(counts.open, counts.idle, "every connection should be back")
            XCTAssertLessThanOrEqual(counts.open, 2)
        }
        XCTAssertGreaterThan(outcomes.cancelled, 0)
        XCTAssertGreaterThan(outcomes.succeeded, 0)
        let value = try await selectOne(pool)
        XCTAssertEqual(value, "1")
        await pool.shutdown()
        XCTAssertEqual(pool.counts.open, 0)
    }

    func testAWaiterGivesUpAfterTheWaitLimitAndThePoolStillWorks() async throws {
        let database = try await makeDatabase()
        let pool = makePool(database.url, maximumConnections: 1, waitLimit: 0.3)
        let (holder, letGo) = await holdAConnection(pool)
        let started = Date()
        let error = await assertVaultError(.timedOut) { try await selectOne(pool) }
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(waited, 0.25)
        XCTAssertLessThan(waited, 2, "bounded by the wait limit")
        XCTAssertTrue(error?.message.contains("no database connection came free within 0.3 s") ?? false, "\(error!)")
        XCTAssertEqual(pool.counts.waiting, 0)
        letGo()
        try await holder.value
        let value = try await selectOne(pool)
        XCTAssertEqual(value, "1")
        XCTAssertEqual(pool.counts.open, 1, "no connection leaked")
        await pool.shutdown()
    }

    func testShutdownResumesWaitersWithAnError() async throws {
        let database = try await makeDatabase()
        let pool = makePool(database.url, maximumConnections: 1)
        let (holder, letGo) = await holdAConnection(pool)
        let waiter = Task { try await selectOne(pool) }
        try await waitUntil("the second task waits") { pool.counts.waiting == 1 }
        await pool.shutdown()
        let error = await assertVaultError(.connectionFailed) { try await waiter.value }
        XCTAssertTrue(error?.message.contains("shut down") ?? false, "\(String(describing: error))")
        letGo()
        try await holder.value
        XCTAssertEqual(pool.counts.open, 0, "the lent connection should close when returned")
    }

    func testAnInvalidPoolSizeIsRefusedOnUseWithoutCrashing() async throws {
        for size in [0, -1, 1001] {
            let pool = makePool("postgresql:///unused", maximumConnections: size)
            let error = await assertVaultError(.invalidInput) { try await selectOne(pool) }
            XCTAssertEqual(error?.message, "maximumConnections must be 1 to 1000, not \(size).")
            XCTAssertEqual(pool.counts.open, 0)
            await pool.shutdown()
        }
        // Through the public API, the vault refuses to be made at all.
        let configuration = VaultConfiguration(
            databaseURL: "postgresql:///unused", keyring: try Keyring(current: .generate()), maximumConnections: 0)
        XCTAssertThrowsError(try Vault(configuration: configuration)) { error in
            XCTAssertEqual(
                (error as? VaultError)?.message, "VaultConfiguration: maximumConnections must be 1 to 1000, not 0.")
        }
    }
}

private func makePool(_ url: String, maximumConnections: Int, waitLimit: TimeInterval = 10) -> ConnectionPool {
    ConnectionPool(
        conninfo: url, maximumConnections: maximumConnections, waitLimit: waitLimit)
}

private func selectOne(_ pool: ConnectionPool) async throws(VaultError) -> String? {
    try await pool.withConnection(idempotent: true) { connection in
        try connection.queryText("SELECT 1").first?.first ?? nil
    }
}

/// Starts a task that takes a connection from `pool` and keeps it until `letGo` is called; returns once the
/// connection is taken.
private func holdAConnection(
    _ pool: ConnectionPool
) async -> (holder: Task<Void, any Error>, letGo: @Sendable () -> Void) {
    let (acquired, acquiredSignal) = AsyncStream.makeStream(of: Void.self)
    let (letGo, letGoSignal) = AsyncStream.makeStream(of: Void.self)
    let holder = Task {
        try await pool.withLease { (_) throws(VaultError) in
            acquiredSignal.yield()
            for await _ in letGo { break }
        }
    }
    for await _ in acquired { break }
    return (holder, { letGoSignal.yield() })
}
