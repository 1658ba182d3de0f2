import Foundation

/// A row of `oauth_tokens` as listing reads it: no ciphertext or metadata leaves the database, only whether an
/// access token is stored and the refresh bookkeeping. Times in seconds since 1970.
struct ListedRow: Sendable {
    var clientID: String
    var provider: String
    var keyID: KeyID
    var expiresAt: Double?
    var scopes: String?
    var hasAccessToken: Bool
    var createdAt: Double
    var updatedAt: Double
    var version: Int64
    var needsReauthorization: Bool
    var lastRefreshError: String?
    var lastRefreshedAt: Double?
    var lastRefreshFailedAt: Double?
}

/// Keyset pagination for listing, in (client_id, provider) order, over every row or only those that need
/// re-authorization. Its own column list (not `SealedRow.columns`), so that the refresh path's statements, which
/// read columns after `SealedRow.columns` by index, stay as they are.
extension TokenRepository {
    private static let listedColumns = """
        client_id, provider, key_id, token_expiry, scopes, access_token_ciphertext IS NOT NULL, created_at, \
        updated_at, version, needs_reauthorization, last_refresh_error, last_refreshed_at, last_refresh_failed_at
        """

    static let listPage = PreparedStatement(
        name: "token_vault_list_page",
        sql: """
            SELECT \(listedColumns) FROM oauth_tokens
            WHERE (client_id, provider) > ($1, $2)
            ORDER BY client_id, provider
            LIMIT $3::integer
            """)

    /// The filter is in the SQL text, not a parameter, so that each statement has one plan: the unique
    /// (client_id, provider) index walked from the cursor, with the flag checked on each row it passes.
    static let listPageNeedingReauthorization = PreparedStatement(
        name: "token_vault_list_reauth_page",
        sql: """
            SELECT \(listedColumns) FROM oauth_tokens
            WHERE needs_reauthorization AND (client_id, provider) > ($1, $2)
            ORDER BY client_id, provider
            LIMIT $3::integer
            """)

    /// The rows after (client, provider) in key order, at most `limit` of them, without secrets; with
    /// `needingReauthorization`, only rows the provider refused to refresh.
    func listedPage(
        after cursor: (client: String, provider: String)?, limit: Int, needingReauthorization: Bool
    ) async throws(VaultError) -> [ListedRow] {
        let statement = needingReauthorization ? Self.listPageNeedingReauthorization : Self.listPage
        let parameters: [SQLValue] = [
            .text(cursor?.client ?? ""), .text(cursor?.provider ?? ""), .text(String(limit)),
        ]
        return try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(prepared: statement, parameters)
            return (0..<result.rowCount).map { ListedRow(result: result, row: $0) }
        }
    }
}

extension ListedRow {
    /// Decodes a row of `TokenRepository.listedColumns`, in order.
    init(result: PGResult, row: Int) {
        self.init(
            clientID: result.string(row, 0) ?? "", provider: result.string(row, 1) ?? "",
            keyID: KeyID(rawValue: result.string(row, 2) ?? ""), expiresAt: result.timestamp(row, 3),
            scopes: result.string(row, 4), hasAccessToken: result.bool(row, 5) ?? false,
            createdAt: result.timestamp(row, 6) ?? 0, updatedAt: result.timestamp(row, 7) ?? 0,
            version: result.integer(row, 8) ?? 0, needsReauthorization: result.bool(row, 9) ?? false,
            lastRefreshError: result.string(row, 10), lastRefreshedAt: result.timestamp(row, 11),
            lastRefreshFailedAt: result.timestamp(row, 12))
    }
}
