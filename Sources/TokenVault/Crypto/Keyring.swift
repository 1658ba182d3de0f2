/// The current key, which seals, and the previous keys, which only open.
///
/// Keep a retired key among the previous keys until ``Vault/rotateKeys(batchSize:dryRun:progress:shouldStop:)``
/// has re-sealed every row under the current one; rows sealed under a key that is not here cannot be read.
public struct Keyring: Sendable {
    /// The key that seals every write.
    public let current: VaultKey
    /// Retired keys, kept only to open rows not yet re-sealed under ``current``.
    public let previous: [VaultKey]
    private let byID: [KeyID: VaultKey]

    /// Refuses a keyring in which the current key also appears among the previous keys, or a key appears twice:
    /// both are configuration mistakes that would otherwise surface much later, during a rotation.
    ///
    /// - Throws: `.keyConfiguration` for either mistake.
    public init(current: VaultKey, previous: [VaultKey] = []) throws(VaultError) {
        var byID = [current.id: current]
        for key in previous {
            if key.id == current.id {
                throw VaultError(
                    .keyConfiguration,
                    "the current key (id \(current.id)) also appears among the previous keys; "
                        + "a retired key must never seal again. Remove it from the previous keys."
                )
            }
            if byID[key.id] != nil {
                throw VaultError(
                    .keyConfiguration,
                    "key \(key.id) appears twice among the previous keys; list each previous key once."
                )
            }
            byID[key.id] = key
        }
        self.current = current
        self.previous = previous
        self.byID = byID
    }

    /// The key with this id, if it is in the keyring.
    public func key(for id: KeyID) -> VaultKey? {
        id == current.id ? current : byID[id]  // the common case without hashing
    }

    /// The ids of every key in the keyring, current first.
    public var keyIDs: [KeyID] { [current.id] + previous.map(\.id) }
}
