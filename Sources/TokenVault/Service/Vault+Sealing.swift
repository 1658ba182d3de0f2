import Foundation

extension Vault {
    /// Opens both tokens of a row. Failures are logged (an audit record, without secrets) and thrown.
    package func open(_ row: SealedRow) throws(VaultError) -> StoredTokens {
        do {
            let (access, refresh) = try sealer.openRow(row)
            return StoredTokens(
                clientID: row.clientID, provider: row.provider, accessToken: access, refreshToken: refresh,
                expiresAt: row.expiresAt.map { Date(timeIntervalSince1970: $0) }, scopes: row.scopes,
                metadataJSON: row.metadataJSON, keyID: row.keyID, createdAt: Date(timeIntervalSince1970: row.createdAt),
                updatedAt: Date(timeIntervalSince1970: row.updatedAt), version: row.version)
        } catch {
            throw auditOpenFailure(error, row: row)
        }
    }

    /// Leaves an audit record of a row that failed to open (ids and the error code, no secret) and returns the
    /// error to throw.
    func auditOpenFailure(_ error: VaultError, row: SealedRow) -> VaultError {
        var metadata = Self.metadata(row.clientID, row.provider, row.keyID)
        metadata[LogKey.error] = "\(error.code)"
        logger.error("could not open a stored row", metadata: metadata)
        metrics.openFailure(field: "row", reason: "\(error.code)")
        return error
    }
}
