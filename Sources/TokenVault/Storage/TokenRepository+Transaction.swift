/// A transaction on one pooled connection, lent by ``TokenRepository/withTransaction(_:)``: the statements that run
/// inside it. Not to be kept beyond the closure it was given to.
package struct TokenTransaction: Sendable {
    let connection: PooledConnection

    /// Runs `body` with the connection on its thread.
    func run<T: Sendable>(
        _ body: @escaping @Sendable (PGConnection) throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        try await connection.runTyped(body)
    }

    /// Starts `body` on the connection's thread without waiting for it (see ``PooledConnection/start(_:)``).
    func start<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws(VaultError) -> T) -> Pending<T> {
        connection.start(body)
    }
}

extension TokenRepository {
    /// Runs `body` in one transaction on one connection: committed when `body` returns, rolled back when it throws
    /// (as postgres-nio's `withTransaction`). The connection is held until then, awaits included.
    /// `begin` starts it: `BEGIN`, or `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY` for reads that must see
    /// one snapshot.
    func withTransaction<T: Sendable>(
        begin: String = "BEGIN", _ body: (TokenTransaction) async throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        try await pool.withLease { (lease) throws(VaultError) -> T in
            try await Self.withTransaction(on: lease, begin: begin, body)
        }
    }

    /// `withTransaction` on a connection the caller holds. The one place that begins, commits and rolls back a
    /// transaction (migrations apart, which run as one script on their connection).
    package static func withTransaction<T: Sendable>(
        on connection: PooledConnection, begin: String = "BEGIN",
        _ body: (TokenTransaction) async throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        try await connection.runTyped { (connection) throws(VaultError) in try connection.execute(script: begin) }
        do {
            let value = try await body(TokenTransaction(connection: connection))
            try await connection.runTyped { (connection) throws(VaultError) in try connection.execute(script: "COMMIT")
            }
            return value
        } catch {
            // A ROLLBACK that fails leaves a connection that libpq reports broken: the pool then drops it.
            if !connection.isBroken {
                try? await connection.runTyped { (connection) throws(VaultError) in
                    try connection.execute(script: "ROLLBACK")
                }
            }
            throw error
        }
    }
}
