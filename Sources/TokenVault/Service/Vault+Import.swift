import Foundation

/// One line of `token-vault import`: a token response plus the row it belongs to.
public struct ImportRecord: Sendable {
    public var client: String
    public var provider: String
    public var tokens: TokenSet

    public init(client: String, provider: String, tokens: TokenSet) {
        self.client = client
        self.provider = provider
        self.tokens = tokens
    }

    /// Parses one JSON object: `client_id`, `provider`, the token-response fields of `put` (`access_token`,
    /// `refresh_token`, `expires_in`, `scope`, `api_domain`, …) and optionally `expires_at` (ISO 8601 or
    /// seconds since 1970), which wins over `expires_in` (for exports of stored tokens).
    public static func parse(line: [UInt8], receivedAt now: Date = Date()) throws(VaultError) -> ImportRecord {
        var object: [String: JSONValue]
        do {
            object = try JSONDecoder().decode([String: JSONValue].self, from: Data(line))
        } catch {
            throw VaultError(.invalidInput, "not a JSON object.")
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
        var tokens = try TokenResponse.parse(object: object, receivedAt: now)
        if let expiresAt { tokens.expiresAt = expiresAt }
        return ImportRecord(client: client, provider: provider, tokens: tokens)
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
    /// statement per batch of up to ``importBatchSize`` rows, in one transaction, each batch checked and sealed
    /// while the previous one is written. Later records for the same (client, provider) win. Returns the number
    /// of rows written (each row once, however many records it had).
    @discardableResult
    public func importTokens(_ records: [ImportRecord]) async throws(VaultError) -> Int {
        guard !records.isEmpty else { return 0 }
        let keyID = sealer.keyring.current.id
        let batches = TokenRepository.importBatches(records.count)
        // Duplicates are found batch by batch, while the previous statement runs, rather than all before the
        // first: within a statement only a row's last record is written (PostgreSQL refuses to upsert a row twice
        // in one statement), and a later statement overwrites an earlier one's row.
        var seen = RecordIndex(capacity: records.count)
        var sent = 0
        let parameters = { (batch: Int) throws(VaultError) -> [SQLValue] in
            let indices = seen.lastRecordPerRow(records, in: batches[batch])
            sent += indices.count
            var nonces = NonceBatch(count: 2 * indices.count)
            var rows: [SealedRow] = []
            rows.reserveCapacity(indices.count)
            for index in indices {
                let record = records[index]
                do throws(VaultError) {
                    try Self.validate(client: record.client, provider: record.provider)
                } catch {
                    // Thrown before this batch is written; the transaction then rolls back the earlier ones.
                    throw VaultError(error.code, "import record \(index + 1): \(error.message) Nothing was imported.")
                }
                rows.append(
                    try self.seal(
                        record.tokens, client: record.client, provider: record.provider, cached: false,
                        nonces: &nonces))
            }
            return TokenRepository.upsertBatchParameters(rows, keyID: keyID)
        }
        let statementRows = try await repository.upsertBatches(count: batches.count, parameters: parameters)
        // A row written by two statements counts once.
        let written = statementRows - (sent - seen.rows)
        logger.info("imported tokens", metadata: ["token_vault.rows": "\(written)"])
        return written
    }

    /// Rows per statement of ``importTokens(_:)``, but for a short first statement that starts the pipeline.
    public static let importBatchSize = TokenRepository.importBatchSize
}

/// The last record seen of each (client, provider), filled batch by batch.
struct RecordIndex {
    private var last: [RowKey: Int] = [:]

    init(capacity: Int) {
        last.reserveCapacity(capacity)
    }

    /// Distinct rows seen so far.
    var rows: Int { last.count }

    /// The indices in `range` (which follows every range given before) of each row's last record within it,
    /// in record order. One hash lookup per record when the range has no duplicates.
    mutating func lastRecordPerRow(_ records: [ImportRecord], in range: Range<Int>) -> [Int] {
        var repeated = false
        for index in range {
            let key = RowKey(client: records[index].client, provider: records[index].provider)
            if let previous = last.updateValue(index, forKey: key), previous >= range.lowerBound { repeated = true }
        }
        guard repeated else { return Array(range) }
        return range.filter { last[RowKey(client: records[$0].client, provider: records[$0].provider)] == $0 }
    }
}
