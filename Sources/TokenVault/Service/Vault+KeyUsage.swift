import Foundation

extension Vault {
    /// How many rows are sealed under each key id, counted in the database (keys not in the keyring included):
    /// which previous keys still hold rows, and which no row uses any more and can be retired.
    ///
    /// - Throws: `.connectionFailed`, `.database` or `.schemaOutdated` from the database.
    public func rowCountsByKeyID() async throws(VaultError) -> [KeyID: Int] {
        try await repository.countByKeyID()
    }

    /// When each key was first and last used, from the audit trail: the earliest and latest event naming it
    /// (a store, a refresh, a rotation batch, a value that did not open), and how many events do. Empty when the
    /// audit trail was never created; a key no event names is absent. Reads every event once.
    ///
    /// - Throws: `.connectionFailed` or `.database` from the database.
    public func keyUse() async throws(VaultError) -> [KeyID: KeyUse] {
        func date(_ microseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(microseconds) / 1_000_000) }
        return try await repository.auditUseByKeyID().mapValues {
            KeyUse(firstUse: date($0.first), lastUse: date($0.last), events: $0.events)
        }
    }
}

/// A key's use as the audit trail records it (``Vault/keyUse()``).
public struct KeyUse: Sendable, Equatable {
    /// The earliest audit event naming the key.
    public let firstUse: Date
    /// The latest audit event naming the key.
    public let lastUse: Date
    /// How many audit events name the key.
    public let events: Int
}
