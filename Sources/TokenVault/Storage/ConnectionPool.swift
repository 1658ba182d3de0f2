import Logging

/// A bounded pool of PostgreSQL connections.
///
/// At most `maximumConnections` exist at once; callers beyond that wait their turn in order. A connection that
/// broke is closed and replaced, and an idempotent operation that failed because its connection dropped is run
/// once more on a fresh connection.
actor ConnectionPool {
    let conninfo: String
    let maximumConnections: Int
    let schema: String?
    private let logger: Logger
    private var idle: [PooledConnection] = []
    private var open = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var closed = false
    private var serial = 0

    init(conninfo: String, maximumConnections: Int, schema: String? = nil, logger: Logger) {
        precondition(maximumConnections > 0, "a pool needs at least one connection")
        self.conninfo = conninfo
        self.schema = schema
        self.maximumConnections = maximumConnections
        self.logger = logger
    }

    /// Runs `body` on a pooled connection, off the cooperative thread pool.
    /// - Parameter idempotent: when true and the connection drops, the operation is retried once on a new one.
    nonisolated func withConnection<T: Sendable>(
        idempotent: Bool, _ body: @escaping @Sendable (PGConnection) throws -> T
    ) async throws(VaultError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            let connection = try await acquire()
            do {
                let value = try await connection.run(body)
                await release(connection)
                return value
            } catch let error as VaultError {
                let broken = error.code == .connectionFailed || connection.isBroken
                await release(connection, broken: broken)
                if broken && idempotent && attempt == 1 {
                    logger.warning(
                        "database connection lost; retrying once on a new connection",
                        metadata: ["token_vault.sqlstate": "\(error.sqlState ?? "none")"])
                    continue
                }
                throw error
            } catch {
                await release(connection)
                throw VaultError(.database, "unexpected database failure: \(error)")
            }
        }
    }

    /// Lends one connection for a multi-step operation (a transaction that spans awaits, such as a refresh).
    /// When `body` throws, any open transaction is rolled back before the connection is returned.
    nonisolated func withLease<T: Sendable>(
        _ body: (PooledConnection) async throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            await release(connection)
            return value
        } catch {
            var broken = connection.isBroken
            if !broken {
                do {
                    try await connection.runTyped { (connection) throws(VaultError) in
                        try connection.execute(script: "ROLLBACK")
                    }
                } catch {
                    broken = true
                }
            }
            await release(connection, broken: broken)
            throw error
        }
    }

    /// A schema name that can go into `search_path` unquoted.
    static func isValidSchema(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        guard let first = scalars.first, !("0"..."9").contains(first), scalars.count <= 63 else { return false }
        return scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    private func acquire() async throws(VaultError) -> PooledConnection {
        if let schema, !Self.isValidSchema(schema) {
            throw VaultError(
                .invalidInput,
                "the schema name '\(schema)' is not allowed: use 1 to 63 lower-case letters, digits and underscores, "
                    + "not starting with a digit.")
        }
        while true {
            if closed { throw VaultError(.connectionFailed, "the vault was shut down; create a new Vault.") }
            if let connection = idle.popLast() { return connection }
            if open < maximumConnections {
                open += 1
                serial += 1
                do {
                    return try await PooledConnection.connect(
                        conninfo: conninfo, applicationName: "token-vault", label: "token-vault.pg.\(serial)",
                        schema: schema)
                } catch {
                    open -= 1
                    wakeOne()
                    throw error
                }
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    private func release(_ connection: PooledConnection, broken: Bool = false) {
        if broken || closed {
            open -= 1  // dropping the last reference closes it (PQfinish in deinit)
        } else {
            idle.append(connection)
        }
        wakeOne()
    }

    private func wakeOne() {
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    /// Closes idle connections and refuses new work. Connections in use close when they are returned.
    func shutdown() {
        closed = true
        open -= idle.count
        idle.removeAll()
        let pending = waiters
        waiters.removeAll()
        for waiter in pending { waiter.resume() }
    }
}
