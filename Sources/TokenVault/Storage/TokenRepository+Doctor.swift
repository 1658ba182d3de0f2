/// What `doctor` reads from the server: the connection's endpoint and the settings that decide what reaches the
/// server's logs. Values are settings, never data.
package struct ServerFacts: Sendable {
    package let endpoint: PGConnection.Endpoint
    /// The server's own `port` setting: a pooler or proxy in the path listens on another.
    package let serverPort: String
    package let version: String
    /// Setting name → value, for the logging settings read (absent when the server has no such setting).
    package let settings: [String: String]
    /// Audit events per MAC key id.
    package let auditEventsByKeyID: [String: Int]
    /// Rows marked as needing re-authorization.
    package let rowsNeedingReauthorization: Int
}

extension TokenRepository {
    static let loggingSettings = [
        "log_statement", "log_min_duration_statement", "log_min_duration_sample", "log_statement_sample_rate",
        "log_transaction_sample_rate", "log_parameter_max_length", "log_parameter_max_length_on_error",
        "log_min_error_statement", "shared_preload_libraries", "session_preload_libraries",
        "auto_explain.log_min_duration", "auto_explain.log_parameter_max_length", "auto_explain.log_analyze",
        "debug_print_parse", "debug_print_plan",
    ]

    /// Reads ``ServerFacts`` on one connection. The audit and refresh counts are 0 when their tables do not exist.
    func serverFacts(schemaVersion: Int) async throws(VaultError) -> ServerFacts {
        try await pool.withConnection(idempotent: true) { connection in
            var settings: [String: String] = [:]
            let names = Self.loggingSettings
            let result = try connection.query(
                "SELECT name, current_setting(name, true) FROM unnest($1::text[]) AS name", [BinaryArray.text(names)])
            for row in 0..<result.rowCount {
                if let name = result.string(row, 0), let value = result.string(row, 1) { settings[name] = value }
            }
            let server = try connection.query("SELECT current_setting('port'), current_setting('server_version')")
            var byKey: [String: Int] = [:]
            var reauthorization = 0
            if schemaVersion >= 5 {
                let events = try connection.query(
                    "SELECT mac_key_id, count(*) FROM token_vault_audit_events GROUP BY mac_key_id")
                for row in 0..<events.rowCount {
                    byKey[events.string(row, 0) ?? ""] = Int(events.integer(row, 1) ?? 0)
                }
            }
            if schemaVersion >= 2 {
                let marked = try connection.query("SELECT count(*) FROM oauth_tokens WHERE needs_reauthorization")
                reauthorization = Int(marked.integer(0, 0) ?? 0)
            }
            return ServerFacts(
                endpoint: connection.endpoint, serverPort: server.string(0, 0) ?? "",
                version: server.string(0, 1) ?? "", settings: settings, auditEventsByKeyID: byKey,
                rowsNeedingReauthorization: reauthorization)
        }
    }
}
