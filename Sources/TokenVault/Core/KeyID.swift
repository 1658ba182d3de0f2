/// The identifier of a key: derived from the key with keyed BLAKE2b, stable and not reversible.
///
/// `key_id = hex(BLAKE2b-128(key: K, message: "token-vault/key-id/v1"))`, 32 lowercase hex characters.
/// Every row stores the id of the key that sealed it, so opening picks the right key at once.
public struct KeyID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The 32 lowercase hex characters, as stored in the `key_id` column and logged.
    public let rawValue: String
    /// An id as stored or logged; it is not checked against any key.
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    public static func < (lhs: KeyID, rhs: KeyID) -> Bool { lhs.rawValue < rhs.rawValue }
    public init(from decoder: any Decoder) throws { rawValue = try decoder.singleValueContainer().decode(String.self) }
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
