import Dispatch
import Foundation
import Synchronization

/// A libpq connection with its own serial dispatch queue: every blocking libpq call runs there,
/// off Swift's cooperative thread pool, and never on two threads at once.
package final class PooledConnection: @unchecked Sendable {
    // @unchecked: `connection` (a libpq handle, not thread-safe) is touched only on the serial `queue`.
    private let connection: PGConnection
    private let queue: DispatchQueue

    private init(connection: PGConnection, queue: DispatchQueue) {
        self.connection = connection
        self.queue = queue
    }

    /// Opens a connection on a queue of its own; `statementTimeout` bounds, in seconds, each statement's wait.
    package static func connect(
        conninfo: String, applicationName: String, label: String, schema: String? = nil,
        statementTimeout: Double = PGConnection.defaultStatementTimeout,
        statements: StatementMode = StatementMode(prepared: true)
    ) async throws(VaultError) -> PooledConnection {
        do {
            return try await connectUntyped(
                conninfo: conninfo, applicationName: applicationName, label: label, schema: schema,
                statementTimeout: statementTimeout, statements: statements)
        } catch let error as VaultError {
            throw error
        } catch {
            throw VaultError(.connectionFailed, "cannot connect to PostgreSQL (\(type(of: error))).", underlying: error)
        }
    }

    private static func connectUntyped(
        conninfo: String, applicationName: String, label: String, schema: String?, statementTimeout: Double,
        statements: StatementMode
    ) async throws -> PooledConnection {
        let queue = DispatchQueue(label: label)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(
                    with: Result {
                        PooledConnection(
                            connection: try PGConnection(
                                conninfo: conninfo, applicationName: applicationName, schema: schema,
                                statementTimeout: statementTimeout, statements: statements),
                            queue: queue)
                    })
            }
        }
    }

    /// Runs `body` with the connection on its queue.
    func run<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try body(self.connection) })
            }
        }
    }

    /// Starts `body` on the connection's queue at once and returns without waiting: the caller does other work
    /// (sealing the next batch) while the statement runs, then awaits ``Pending/value()``.
    func start<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws(VaultError) -> T) -> Pending<T> {
        let pending = Pending<T>()
        queue.async {
            pending.fill(Result { () throws(VaultError) in try body(self.connection) })
        }
        return pending
    }

    /// `run` with the error type kept.
    package func runTyped<T: Sendable>(
        _ body: @escaping @Sendable (PGConnection) throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        do {
            return try await run { connection in try body(connection) }
        } catch let error as VaultError {
            throw error
        } catch {
            throw VaultError(.database, "unexpected database failure (\(type(of: error))).", underlying: error)
        }
    }

    /// Only meaningful between calls, when no `run` is in flight.
    var isBroken: Bool { queue.sync { connection.isBroken } }
}

/// The result of work started with ``PooledConnection/start(_:)``, made on the connection's thread.
final class Pending<T: Sendable>: Sendable {
    private struct State {
        var result: Result<T, VaultError>?
        var waiter: CheckedContinuation<Result<T, VaultError>, Never>?
    }

    private let state = Mutex(State())

    fileprivate func fill(_ value: Result<T, VaultError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<T, VaultError>, Never>? in
            guard let waiter = state.waiter else {
                state.result = value
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: value)
    }

    /// Waits for the work to finish; returns at once when it already has.
    func value() async throws(VaultError) -> T {
        if let ready = state.withLock({ $0.result }) { return try ready.get() }
        let outcome = await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Result<T, VaultError>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
        return try outcome.get()
    }
}
