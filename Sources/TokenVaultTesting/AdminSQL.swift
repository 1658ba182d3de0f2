import TokenVault

/// Runs administrative SQL (no parameters, no results) on a fresh connection. For test support and tooling:
/// creating scratch databases, breaking connections on purpose, inspecting what is stored.
package enum AdminSQL {
    /// Runs `sql` (one or more statements) and closes the connection.
    package static func execute(_ sql: String, url: String) async throws(VaultError) {
        let connection = try await PooledConnection.connect(
            conninfo: url, applicationName: "token-vault-admin", label: "token-vault.admin")
        try await connection.runTyped { (connection) throws(VaultError) in try connection.execute(script: sql) }
    }

    /// Runs a query and returns every cell as text (NULL as nil). Values are never bound: trusted SQL only.
    package static func query(_ sql: String, url: String) async throws(VaultError) -> [[String?]] {
        let connection = try await PooledConnection.connect(
            conninfo: url, applicationName: "token-vault-admin", label: "token-vault.admin")
        return try await connection.runTyped { (connection) throws(VaultError) in try connection.queryText(sql) }
    }
}
