/// Which secret of a row a sealed value holds. Part of the sealing context, so a value cannot change field.
public enum TokenField: String, Sendable, CaseIterable, Codable {
    case accessToken = "access_token"
    case refreshToken = "refresh_token"
}

/// A sealed secret as stored: the ciphertext column (format byte, MAC, ciphertext) and the nonce column.
public struct SealedValue: Sendable, Equatable {
    public var ciphertext: [UInt8]
    public var nonce: [UInt8]

    public init(ciphertext: [UInt8], nonce: [UInt8]) {
        self.ciphertext = ciphertext
        self.nonce = nonce
    }
}

/// Where a sealed value belongs: the binding that makes a ciphertext open only in its own row and field.
public struct SealContext: Sendable, Hashable {
    public var field: TokenField
    public var provider: String
    public var clientID: String

    public init(field: TokenField, provider: String, clientID: String) {
        self.field = field
        self.provider = provider
        self.clientID = clientID
    }

    static let domain = Array("token-vault/seal/v1".utf8)

    /// The unambiguous encoding hashed into the subkey: each of domain, field, provider and client id as a
    /// 4-byte big-endian length followed by its UTF-8 bytes. See docs/ciphertext-format.md.
    var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + Self.domain.count + 13 + provider.utf8.count + clientID.utf8.count)
        func append(_ part: some Collection<UInt8>) {
            let length = UInt32(part.count)
            out.append(UInt8(length >> 24))
            out.append(UInt8((length >> 16) & 0xff))
            out.append(UInt8((length >> 8) & 0xff))
            out.append(UInt8(length & 0xff))
            out.append(contentsOf: part)
        }
        append(Self.domain)
        append(field.rawValue.utf8)
        append(provider.utf8)
        append(clientID.utf8)
        return out
    }
}
