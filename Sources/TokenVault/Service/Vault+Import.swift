import Foundation

/// Tokens to import with ``Vault/importTokens(_:)``, with the client and provider they belong to.
public struct ImportRecord: Sendable {
    /// The client (tenant, account) the tokens belong to.
    public var client: String
    /// The provider name to store them under, such as `zoho_crm`.
    public var provider: String
    /// The tokens to seal and store.
    public var tokens: TokenSet
    /// The fields of the parsed line that were neither read nor kept as metadata (names only), for a note.
    public internal(set) var droppedFields: [String] = []

    /// A record; the client id and provider are checked when the record is imported.
    public init(client: String, provider: String, tokens: TokenSet) {
        self.client = client
        self.provider = provider
        self.tokens = tokens
    }

    /// Parses one JSON object (a line of a JSON Lines file): `client_id`, `provider`, the fields of a token
    /// response (`access_token`, `refresh_token`, `expires_in`, `scope`, `api_domain`, …, as
    /// ``TokenResponse/parse(_:receivedAt:fallbackRefreshToken:requireAccessToken:metadataFields:)`` reads them) and optionally
    /// `expires_at` (ISO 8601 or seconds since 1970), which wins over `expires_in` (for exports of stored tokens).
    ///
    /// - Throws: `.invalidInput` when the line is not a JSON object, `client_id` or `provider` is missing or not
    ///   valid, `expires_at` cannot be read, or the token fields are not valid.
    /// - Parameters:
    ///   - line: the line's bytes, without its line break.
    ///   - now: when `expires_in` counts from.
    ///   - metadataFields: the fields kept as metadata (see ``TokenResponse/defaultMetadataFields``); the others
    ///     are dropped and named in ``droppedFields``.
    public static func parse(
        line: [UInt8], receivedAt now: Date = Date(), metadataFields: Set<String> = TokenResponse.defaultMetadataFields
    ) throws(VaultError) -> ImportRecord {
        guard line.count <= TokenResponse.maximumBytes else {
            throw VaultError(
                .invalidInput,
                "the line is \(line.count) bytes, more than the \(TokenResponse.maximumBytes) it may have.")
        }
        var object: [String: JSONValue]
        do {
            object = try JSONDecoder().decode([String: JSONValue].self, from: Data(line))
        } catch {
            throw VaultError(.invalidInput, "not a JSON object (or not valid JSON).")
        }
        guard let client = object.removeValue(forKey: "client_id")?.stringValue,
            let provider = object.removeValue(forKey: "provider")?.stringValue
        else {
            throw VaultError(.invalidInput, "client_id and provider must be strings.")
        }
        try Vault.validate(client: client, provider: provider)
        var expiresAt: Date?
        if let value = object.removeValue(forKey: "expires_at"), value != .null {
            if let seconds = value.numberValue, value.stringValue == nil {
                expiresAt = Date(timeIntervalSince1970: seconds)
            } else if let text = value.stringValue, let date = Self.parseDate(text) {
                expiresAt = date
            } else {
                throw VaultError(.invalidInput, "expires_at must be ISO 8601 (2026-01-31T12:00:00Z) or epoch seconds.")
            }
        }
        var tokens = try TokenResponse.parse(object: object, receivedAt: now, metadataFields: metadataFields)
        if let expiresAt {
            tokens.expiresAt = expiresAt
            try tokens.checkExpiry(now: now)
        }
        var record = ImportRecord(client: client, provider: provider, tokens: tokens)
        record.droppedFields = TokenResponse.droppedFields(of: object, keeping: metadataFields)
        return record
    }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        // psql's timestamptz output: 2026-01-31 12:00:00.123456+00
        let normalized = text.replacingOccurrences(of: " ", with: "T")
        let withZone = normalized.hasSuffix("+00") ? normalized + ":00" : normalized
        return formatter.date(from: withZone)
            ?? {
                formatter.formatOptions = [.withInternetDateTime]
                return formatter.date(from: withZone)
            }()
    }
}

extension Vault {
    /// Seals and upserts many rows (bulk onboarding, migration from a plaintext table), all or nothing: one
    /// statement per batch of up to 1000 rows, in one transaction, each batch checked and sealed while the
    /// previous one is written. Later records for the same (client, provider) win. Returns the number of rows
    /// written.
    ///
    /// - Throws: the first record's error that stops the import (such as `.invalidInput` for a client id),
    ///   naming the record by its position; nothing is imported then.
    @discardableResult
    public func importTokens(_ records: [ImportRecord]) async throws(VaultError) -> Int {
        let chosen = Self.lastRecordPerRow(records)
        guard !chosen.isEmpty else { return 0 }
        let written = try await repository.importRows(count: chosen.count) { (batch) throws(VaultError) in
            var rows: [Sealer.RowToSeal] = []
            rows.reserveCapacity(batch.count)
            for index in chosen[batch] {
                let record = records[index]
                do throws(VaultError) {
                    try Self.validate(client: record.client, provider: record.provider)
                } catch {
                    throw Self.importFailure(error, record: index)
                }
                rows.append(.init(tokens: record.tokens, client: record.client, provider: record.provider))
            }
            do throws(Sealer.BatchFailure) {
                return try self.sealer.sealBatch(rows)
            } catch {
                throw Self.importFailure(error.error, record: chosen[batch.lowerBound + error.index])
            }
        }
        logger.info("imported tokens", metadata: [LogKey.rows: "\(written)"])
        return written
    }

    /// Thrown before the record's batch is written; the transaction then rolls back the earlier ones.
    private static func importFailure(_ error: VaultError, record index: Int) -> VaultError {
        VaultError(error.code, "import record \(index + 1): \(error.message) Nothing was imported.")
    }

    /// The index of the last record of each (client, provider), in record order.
    static func lastRecordPerRow(_ records: [ImportRecord]) -> [Int] {
        var last: [RowKey: Int] = [:]
        last.reserveCapacity(records.count)
        for (index, record) in records.enumerated() {
            last[RowKey(client: record.client, provider: record.provider)] = index
        }
        guard last.count < records.count else { return Array(records.indices) }  // no duplicates
        return records.indices.filter {
            last[RowKey(client: records[$0].client, provider: records[$0].provider)] == $0
        }
    }
}
