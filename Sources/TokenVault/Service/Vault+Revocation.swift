import Foundation

extension Vault {
    /// Deletes the tokens of (client, provider), first revoking the refresh token at the provider when `revoke`
    /// is true (RFC 7009; for Zoho `POST {accounts server}/oauth/v2/token/revoke`, which also revokes its access
    /// tokens), at the account's own accounts server. Returns false when there were no tokens.
    ///
    /// A token the provider no longer knows counts as revoked. A successful revocation is reported as
    /// ``VaultEvent/revoked(client:provider:)``. The row is deleted only if it did not change since it was read;
    /// if a refresh rotated the refresh token meanwhile, the new one is revoked too.
    ///
    /// - Throws: `.revocationFailed` when the provider could not be reached, timed out, answered HTTP 5xx or
    ///   refused the app's credentials: the row is kept, and the message says so. `.providerConfiguration` when the
    ///   provider has no ``OAuthProvider/revocationURL``, `.unknownProvider` when it is not configured,
    ///   `.accountsServerRefused` when the row's accounts server is not trusted, `.unknownKey` or
    ///   `.authenticationFailed` when the refresh token cannot be opened: each keeps the row too.
    @discardableResult
    public func delete(client: String, provider: String, revoke: Bool) async throws(VaultError) -> Bool {
        guard revoke else { return try await delete(client: client, provider: provider) }
        try Self.validate(client: client, provider: provider)
        for _ in 0..<5 {
            guard let row = try await repository.find(client: client, provider: provider) else { return false }
            // After the read: nothing to revoke is not a configuration error.
            let configured = try providerConfiguration(provider)
            let accountProvider = try configured.at(accountsServer: row.accountsServer)
            let refreshToken = try open(row).refreshToken
            switch await endpoint.revoke(provider: accountProvider, token: refreshToken) {
            case .revoked, .alreadyInvalid:
                eventHub.emit(.revoked(client: client, provider: provider))
                logger.notice(
                    "revoked the refresh token at the provider", metadata: Self.metadata(client, provider, nil))
                // The revocation and the deletion are audited with the delete; a revocation whose row then turned
                // out to have changed is audited alone, before the next round revokes the new token.
                let revoked = AuditDraft.row(.revoked, client: client, provider: provider, keyID: row.keyID)
                let deleted = try await audited(chains: [AuditEvent.chain(client: client, provider: provider)]) {
                    (transaction) throws(VaultError) in
                    let deleted = try await repository.delete(
                        client: client, provider: provider, version: row.version, in: transaction)
                    let drafts = [
                        revoked,
                        AuditDraft.row(
                            .deleted, client: client, provider: provider, keyID: row.keyID,
                            details: ["revoked": .bool(true)]),
                    ]
                    return (deleted, deleted ? drafts : [revoked])
                }
                if deleted {
                    logger.info("deleted tokens", metadata: Self.metadata(client, provider, nil))
                    return true
                }
            // The row changed after it was read (a refresh may have stored a rotated refresh token): again.
            case .failed(let error):
                throw VaultError(
                    error.code == .providerConfiguration ? .providerConfiguration : .revocationFailed,
                    "could not revoke the refresh token of client '\(client)', provider '\(provider)': "
                        + "\(error.message) The tokens were kept; delete again later, or delete without revoking "
                        + "(the token may then stay live at the provider).", underlying: error.underlying)
            }
        }
        throw VaultError(
            .conflict,
            "the tokens of client '\(client)', provider '\(provider)' kept changing while they were revoked; the row "
                + "was kept. Try again.")
    }
}
