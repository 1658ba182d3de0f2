/// Rows whose access token is due for a refresh, for the background refresher (`Vault.refreshDue`).
struct DueRow: Sendable {
    let client: String
    let provider: String
    let needsReauthorization: Bool
}

extension TokenRepository {
    /// Keyset pagination in (client_id, provider) order over the rows with no access token, or one that expires
    /// before `cutoff` (microseconds since 1970), at most `limit` of them. Reads no sealed column.
    func dueRows(
        after cursor: (client: String, provider: String)?, cutoff: Int64, limit: Int
    ) async throws(VaultError) -> [DueRow] {
        let parameters: [SQLValue] = [
            .text(cursor?.client ?? ""), .text(cursor?.provider ?? ""), .text(String(cutoff)), .text(String(limit)),
        ]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                SELECT client_id, provider, needs_reauthorization FROM oauth_tokens
                WHERE (client_id, provider) > ($1, $2)
                    AND (access_token_ciphertext IS NULL OR token_expiry < \(timestampFromMicroseconds("$3")))
                ORDER BY client_id, provider
                LIMIT $4::integer
                """, parameters)
            return (0..<result.rowCount).map { row in
                DueRow(
                    client: result.string(row, 0) ?? "", provider: result.string(row, 1) ?? "",
                    needsReauthorization: result.bool(row, 2) ?? false)
            }
        }
    }
}
