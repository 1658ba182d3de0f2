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

    /// An RFC 3339 timestamp (`2026-01-31T12:00:00Z`, `…:00.123456+01:00`), or psql's timestamptz output
    /// (`2026-01-31 12:00:00.123456+00`); nil for anything else. At most 9 fractional digits.
    ///
    /// Parsed by hand: Foundation's `ISO8601DateFormatter` (ICU) crashes the process with SIGFPE on some inputs,
    /// such as a fraction of fifty digits (found by the import-line fuzz target).
    static func parseDate(_ text: String) -> Date? {
        var bytes = Array(text.utf8)[...]
        func number(_ digits: Int) -> Int? {
            guard bytes.count >= digits else { return nil }
            var value = 0
            for byte in bytes.prefix(digits) {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            bytes = bytes.dropFirst(digits)
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard let first = bytes.first, characters.utf8.contains(first) else { return false }
            bytes = bytes.dropFirst()
            return true
        }
        guard let year = number(4), expect("-"), let month = number(2), expect("-"), let day = number(2),
            expect("Tt "), let hour = number(2), expect(":"), let minute = number(2), expect(":"),
            let second = number(2)
        else { return nil }
        var nanoseconds = 0
        if expect(".") {
            var digits = 0
            while let byte = bytes.first, (0x30...0x39).contains(byte) {
                digits += 1
                guard digits <= 9 else { return nil }
                nanoseconds = nanoseconds * 10 + Int(byte - 0x30)
                bytes = bytes.dropFirst()
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { nanoseconds *= 10 }
        }
        var offset = 0
        if expect("Zz") {
            offset = 0
        } else if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            bytes = bytes.dropFirst()
            guard let hours = number(2), hours <= 23 else { return nil }
            var minutes = 0
            if !bytes.isEmpty {
                _ = expect(":")
                guard let value = number(2), value <= 59 else { return nil }
                minutes = value
            }
            offset = (hours * 60 + minutes) * 60 * (sign == UInt8(ascii: "+") ? 1 : -1)
        } else {
            return nil
        }
        guard bytes.isEmpty, (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }
        let seconds =
            daysSince1970(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60
            + min(second, 59) - offset
        return Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1e9)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's `days_from_civil`).
    private static func daysSince1970(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
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
        let seal = { (batch: Range<Int>) throws(VaultError) -> [SealedRow] in
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
        let written: Int
        if auditEnabled {
            // A `stored` event per row, and one for the whole import on the chain `vault`, in its transaction.
            let keyID = sealer.keyring.current.id
            let rows = chosen.map { index in
                AuditDraft.row(
                    .stored, client: records[index].client, provider: records[index].provider, keyID: keyID,
                    details: ["source": .string("import")])
            }
            written = try await auditedTransaction(chains: [AuditEvent.vaultChain] + rows.map(\.chain)) {
                (transaction) throws(VaultError) in
                let written = try await repository.importRows(in: transaction, count: chosen.count, seal)
                let summary = AuditDraft.vault(
                    .stored, keyID: keyID, details: ["rows": .number(Double(written)), "source": .string("import")])
                return (written, rows + [summary])
            }
        } else {
            written = try await repository.importRows(count: chosen.count, seal)
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
