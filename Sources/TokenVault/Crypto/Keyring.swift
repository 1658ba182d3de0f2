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

extension Keyring {
    /// Environment variables that configure the keyring.
    public enum Variable {
        /// `TOKEN_VAULT_KEY`: the current key itself, as base64. Prefer ``keyFile``, which suits mounted secrets
        /// and keeps the key out of the environment that child processes inherit.
        public static let key = "TOKEN_VAULT_KEY"
        /// `TOKEN_VAULT_KEY_FILE`: the path of a file holding the current key as base64, such as a mounted secret.
        public static let keyFile = "TOKEN_VAULT_KEY_FILE"
        /// `TOKEN_VAULT_PREVIOUS_KEYS`: retired keys as base64, separated by commas; optional.
        public static let previousKeys = "TOKEN_VAULT_PREVIOUS_KEYS"
        /// `TOKEN_VAULT_PREVIOUS_KEYS_FILE`: the path of a file with one retired key per line (blank lines and
        /// lines starting with `#` are skipped); optional.
        public static let previousKeysFile = "TOKEN_VAULT_PREVIOUS_KEYS_FILE"
    }

    /// Loads the keyring from `TOKEN_VAULT_KEY` or `TOKEN_VAULT_KEY_FILE` (exactly one of them) and the
    /// optional previous keys: `TOKEN_VAULT_PREVIOUS_KEYS` (comma-separated) and/or `TOKEN_VAULT_PREVIOUS_KEYS_FILE`
    /// (a file with one key per line). Error messages never echo a value.
    ///
    /// - Throws: `.keyConfiguration` when neither or both current-key variables are set, a key is not base64 of
    ///   32 bytes, a file cannot be read, or the keyring is inconsistent (see ``init(current:previous:)``).
    public static func fromEnvironment(_ environment: [String: String]) throws(VaultError) -> Keyring {
        let inline = environment[Variable.key].flatMap { $0.isEmpty ? nil : $0 }
        let file = environment[Variable.keyFile].flatMap { $0.isEmpty ? nil : $0 }
        let current: VaultKey
        switch (inline, file) {
        case (.some, .some):
            throw VaultError(
                .keyConfiguration,
                "both \(Variable.key) and \(Variable.keyFile) are set; set exactly one "
                    + "(the key file is preferred for mounted secrets).")
        case (nil, nil):
            throw VaultError(
                .keyConfiguration,
                "no encryption key: set \(Variable.keyFile) to the path of a file holding the key, or "
                    + "\(Variable.key) to the key itself. " + VaultKey.howToMakeAKey)
        case (.some(let value), nil):
            current = try VaultKey(base64: value, name: Variable.key)
        case (nil, .some(let path)):
            current = try VaultKey(contentsOfFile: path, variable: Variable.keyFile)
        }
        var previous: [VaultKey] = []
        if let path = environment[Variable.previousKeysFile], !path.isEmpty {
            previous += try VaultKey.keys(fromFile: path, variable: Variable.previousKeysFile)
        }
        if let list = environment[Variable.previousKeys] {
            for (index, item) in list.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
                let trimmed = item.trimmingASCIIWhitespace()
                if trimmed.isEmpty { continue }
                previous.append(
                    try VaultKey(base64: String(trimmed), name: "entry \(index + 1) of \(Variable.previousKeys)"))
            }
        }
        return try Keyring(current: current, previous: previous)
    }
}
