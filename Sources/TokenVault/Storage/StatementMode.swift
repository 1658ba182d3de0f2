import Logging
import Synchronization

/// How a pool's connections send the vault's statements: as named prepared statements, parsed once per
/// connection (the default, fastest straight to PostgreSQL), or unnamed, parsed with every call (parse, bind and
/// execute in one round trip, through `PQexecParams`), which is what a pooler in transaction mode needs.
///
/// A transaction-mode pooler (PgBouncer before 1.21's `max_prepared_statements`, RDS Proxy, hosted poolers) hands
/// each transaction, and each statement outside one, to any of its server connections, while a named statement
/// lives on the one server connection that prepared it. The symptoms are SQLSTATE 42P05 (a statement of that name
/// exists: another client prepared it on this server connection) and 26000 (no statement of that name: it was
/// prepared on another). In both the statement did not run, so outside a transaction the connection sends it again
/// unnamed, and the whole pool switches to unnamed statements, with one warning naming the setting that avoids the
/// detour. Statement names carry a hash of their SQL, so that a statement of the same name that another client or
/// another version of the vault prepared is always the same SQL.
package final class StatementMode: Sendable {
    private let named: Atomic<Bool>
    private let logging: ContextLogger

    /// - Parameter prepared: false to send every statement unnamed from the start.
    init(prepared: Bool, logger: ContextLogger = ContextLogger(nil)) {
        named = Atomic(prepared)
        self.logging = logger
    }

    /// Whether statements are prepared once per connection under their name.
    var usesNamedStatements: Bool { named.load(ordering: .relaxed) }

    /// SQLSTATEs of a named statement that met a pooler: 42P05 `duplicate_prepared_statement`, 26000
    /// `invalid_sql_statement_name`. Neither statement ran.
    static func isPoolerSymptom(_ sqlState: String?) -> Bool {
        sqlState == "42P05" || sqlState == "26000"
    }

    /// Handles the failure of a named statement. Returns when the caller should send the statement again unnamed
    /// (it failed outside a transaction, with a pooler's symptom); otherwise throws: `error` itself when it is not a
    /// pooler's symptom, or, inside a transaction (which the failure aborted), an error that says the operation
    /// can be run again. Either way, after a symptom the pool uses unnamed statements from now on.
    func recover(from error: VaultError, inTransaction: Bool) throws(VaultError) {
        guard Self.isPoolerSymptom(error.sqlState) else { throw error }
        if named.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
            logging.current.warning(
                """
                a named prepared statement failed as it does behind a connection pooler in transaction mode \
                (PgBouncer, RDS Proxy): this vault sends unnamed statements from now on. Set \
                VaultConfiguration.preparedStatements to false (TOKEN_VAULT_PREPARED_STATEMENTS=off) to start that way.
                """,
                metadata: [LogKey.sqlState: "\(error.sqlState ?? "")"])
        }
        if inTransaction {
            throw VaultError(
                .database,
                "a named prepared statement failed inside a transaction as it does behind a connection pooler in "
                    + "transaction mode; the transaction was rolled back and the vault now sends "
                    + "unnamed statements, so running the operation again works. Set "
                    + "VaultConfiguration.preparedStatements to false to start that way.",
                sqlState: error.sqlState, underlying: error)
        }
    }
}

extension PreparedStatement {
    /// `name` followed by 96 bits of BLAKE2b of `sql` in hex (at most 63 bytes in all, PostgreSQL's limit for a
    /// statement name, for a `name` of up to 38): a statement of this name is always this SQL, whoever prepared
    /// it on a server connection that a pooler shares.
    static func hashedName(_ name: String, sql: String) -> String {
        var digest = [UInt8](repeating: 0, count: 16)
        let text = Array(sql.utf8)
        digest.withUnsafeMutableBytes { output in
            text.withUnsafeBytes { message in
                Sodium.keyedHash(into: output, message: message, key: UnsafeRawBufferPointer(start: nil, count: 0))
            }
        }
        let hex = digest.prefix(12).map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
        }
        return "\(name)_\(hex.joined())"
    }
}
