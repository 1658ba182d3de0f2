/// Where a service's keys come from when they are not in its environment: its own KMS, HSM or secret manager
/// client. ``Keyring/init(provider:)`` asks it once, when the keyring is built.
///
/// ```swift
/// struct KMSKeys: KeyProvider {
///     let kms: KMSClient
///     func currentKey() async throws -> VaultKey {
///         let plaintext = try await kms.decrypt(wrappedDataKey)   // 32 bytes
///         return try VaultKey(bytes: plaintext)
///     }
/// }
/// let keyring = try await Keyring(provider: KMSKeys(kms: client))
/// ```
public protocol KeyProvider: Sendable {
    /// The key that seals every write.
    func currentKey() async throws -> VaultKey
    /// Retired keys, kept only to open rows not yet re-sealed; none unless implemented.
    func previousKeys() async throws -> [VaultKey]
}

extension KeyProvider {
    /// No previous keys.
    public func previousKeys() async throws -> [VaultKey] { [] }
}

extension Keyring {
    /// A keyring from the keys `provider` fetches, current first. The provider's own errors are wrapped, and only
    /// their type is put in the message: a client's error may quote what it was sent.
    ///
    /// - Throws: the provider's `VaultError` as it is; `.cancelled` when the task was cancelled;
    ///   `.keyConfiguration` for any other error of the provider (in ``VaultError/underlying``) and when the keys
    ///   are inconsistent (see ``init(current:previous:)``).
    public init(provider: some KeyProvider) async throws(VaultError) {
        let current = try await Self.ask("the current key") { try await provider.currentKey() }
        let previous = try await Self.ask("the previous keys") { try await provider.previousKeys() }
        try self.init(current: current, previous: previous)
    }

    /// A keyring from two closures, for a provider too small to be a type.
    ///
    /// - Throws: as ``init(provider:)``.
    public init(
        fetchingCurrent current: @Sendable () async throws -> VaultKey,
        previous: @Sendable () async throws -> [VaultKey] = { [] }
    ) async throws(VaultError) {
        let currentKey = try await Self.ask("the current key", current)
        let previousKeys = try await Self.ask("the previous keys", previous)
        try self.init(current: currentKey, previous: previousKeys)
    }

    private static func ask<T>(_ what: String, _ body: () async throws -> T) async throws(VaultError) -> T {
        do {
            return try await body()
        } catch let error as VaultError {
            throw error
        } catch is CancellationError {
            throw VaultError(.cancelled, "cancelled while the key provider fetched \(what).")
        } catch {
            throw VaultError(
                .keyConfiguration, "the key provider failed to fetch \(what) (\(type(of: error))).", underlying: error)
        }
    }
}
