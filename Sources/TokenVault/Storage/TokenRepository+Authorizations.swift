import Foundation

/// An authorization in progress as stored in `token_vault_authorizations`: the state's validator only as a hash,
/// the PKCE verifier sealed.
struct StoredAuthorization: Sendable {
    let validatorHash: [UInt8]
    let clientID: String
    let provider: String
    let redirectURI: String
    let scopes: String?
    /// Nil once the authorization was used.
    let verifier: SealedValue?
    let keyID: KeyID
    /// On the database server's clock.
    let expired: Bool
    let used: Bool
}

/// The authorizations table (migration 4). A state is `selector || validator`: the row is found by its selector,
/// and the validator checked against its hash in constant time by the caller; completing marks the row used (and
/// drops its verifier) in one compare-and-set statement, so that a state completes once across every instance.
extension TokenRepository {
    /// Stores a new authorization that expires `lifetime` seconds from now (server clock), and deletes those that
    /// expired more than a day ago (kept that long so that a late replay is told apart from a forged state).
    func insertAuthorization(
        selector: [UInt8], validatorHash: [UInt8], client: String, provider: String, redirectURI: String,
        scopes: String?, verifier: SealedValue, keyID: KeyID, lifetime: TimeInterval
    ) async throws(VaultError) {
        let parameters: [SQLValue] = [
            .bytes(selector), .bytes(validatorHash), .text(client), .text(provider), .text(redirectURI),
            scopes.map { .text($0) } ?? .null, .bytes(verifier.ciphertext), .bytes(verifier.nonce),
            .text(keyID.rawValue), .text(String(Int64((lifetime * 1000).rounded()))),
        ]
        try await pool.withConnection(idempotent: true) { connection in
            _ = try connection.query(
                """
                INSERT INTO token_vault_authorizations (selector, validator_hash, client_id, provider, redirect_uri,
                    scopes, verifier_ciphertext, verifier_nonce, key_id, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + $10::bigint * interval '1 millisecond')
                ON CONFLICT (selector) DO NOTHING
                """, parameters)
            _ = try connection.query(
                "DELETE FROM token_vault_authorizations WHERE expires_at < now() - interval '1 day'")
        }
    }

    /// The authorization with `selector`, used or not; nil when there is none.
    func findAuthorization(selector: [UInt8]) async throws(VaultError) -> StoredAuthorization? {
        try await pool.withConnection(idempotent: true) { connection in
            let result = try connection.query(
                """
                SELECT validator_hash, client_id, provider, redirect_uri, scopes, verifier_ciphertext, verifier_nonce,
                    key_id, expires_at <= now(), used_at IS NOT NULL
                FROM token_vault_authorizations WHERE selector = $1
                """, [.bytes(selector)])
            guard result.rowCount == 1 else { return nil }
            var verifier: SealedValue?
            if let ciphertext = result.bytes(0, 5), let nonce = result.bytes(0, 6) {
                verifier = SealedValue(ciphertext: ciphertext, nonce: nonce)
            }
            return StoredAuthorization(
                validatorHash: result.bytes(0, 0) ?? [], clientID: result.string(0, 1) ?? "",
                provider: result.string(0, 2) ?? "", redirectURI: result.string(0, 3) ?? "",
                scopes: result.string(0, 4), verifier: verifier, keyID: KeyID(rawValue: result.string(0, 7) ?? ""),
                expired: result.bool(0, 8) ?? true, used: result.bool(0, 9) ?? true)
        }
    }

    /// Marks the authorization used and drops its verifier, if it is neither used nor expired. False when another
    /// caller completed it first (or it expired meanwhile).
    func consumeAuthorization(selector: [UInt8]) async throws(VaultError) -> Bool {
        // Not retried on a dropped connection: a retry would find its own first attempt's mark and report a replay.
        try await pool.withConnection(idempotent: false) { connection in
            try connection.query(
                """
                UPDATE token_vault_authorizations
                SET used_at = now(), verifier_ciphertext = NULL, verifier_nonce = NULL
                WHERE selector = $1 AND used_at IS NULL AND expires_at > now()
                """, [.bytes(selector)]
            ).affectedRows > 0
        }
    }
}
