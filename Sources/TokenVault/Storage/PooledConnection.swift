import Dispatch

/// A libpq connection with its own serial dispatch queue: every blocking libpq call runs there,
/// off Swift's cooperative thread pool, and never on two threads at once.
final class PooledConnection: @unchecked Sendable {
    // @unchecked: `connection` is touched only on `queue`.
    private let connection: PGConnection
    private let queue: DispatchQueue

    private init(connection: PGConnection, queue: DispatchQueue) {
        self.connection = connection
        self.queue = queue
    }

    static func connect(
        conninfo: String, applicationName: String, label: String, schema: String? = nil
    ) async throws(VaultError) -> PooledConnection {
        do {
            return try await connectUntyped(
                conninfo: conninfo, applicationName: applicationName, label: label, schema: schema)
        } catch let error as VaultError {
            throw error
        } catch {
            throw VaultError(.connectionFailed, "cannot connect to PostgreSQL: \(error)")
        }
    }

    private static func connectUntyped(
        conninfo: String, applicationName: String, label: String, schema: String?
    ) async throws -> PooledConnection {
        let queue = DispatchQueue(label: label)
        return try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(
                    with: Result {
                        PooledConnection(
                            connection: try PGConnection(
                                conninfo: conninfo, applicationName: applicationName, schema: schema),
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

    /// `run` with the error type kept.
    func runTyped<T: Sendable>(
        _ body: @escaping @Sendable (PGConnection) throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        do {
            return try await run { connection in try body(connection) }
        } catch let error as VaultError {
            throw error
        } catch {
            throw VaultError(.database, "unexpected database failure: \(error)")
        }
    }

    /// Only meaningful between calls, when no `run` is in flight.
    var isBroken: Bool { queue.sync { connection.isBroken } }
}
