/// Where a sealed value belongs: the binding that makes a ciphertext open only in its own row and field.
package struct SealContext: Sendable, Hashable {
    package var field: TokenField
    package var provider: String
    package var clientID: String

    package init(field: TokenField, provider: String, clientID: String) {
        self.field = field
        self.provider = provider
        self.clientID = clientID
    }

    static let domain = Array("token-vault/seal/v1".utf8)

    /// The unambiguous encoding hashed into the subkey: each of domain, field, provider and client id as a
    /// 4-byte big-endian length followed by its UTF-8 bytes. See docs/ciphertext-format.md.
    var encoded: [UInt8] {
        withEncoded { Array($0) }
    }

    /// Calls `body` with ``encoded``, built in a stack buffer rather than an array.
    func withEncoded<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        var (fieldName, provider, clientID) = (field.rawValue, provider, clientID)
        return fieldName.withUTF8 { field in
            provider.withUTF8 { provider in
                clientID.withUTF8 { client in
                    Self.domain.withUnsafeBytes { domain in
                        let length = 16 + domain.count + field.count + provider.count + client.count
                        return withUnsafeTemporaryAllocation(byteCount: length, alignment: 1) { out in
                            var offset = 0
                            func append(_ part: UnsafeRawBufferPointer) {
                                withUnsafeBytes(of: UInt32(part.count).bigEndian) { count in
                                    UnsafeMutableRawBufferPointer(rebasing: out[offset..<offset + 4])
                                        .copyMemory(from: count)
                                }
                                offset += 4
                                UnsafeMutableRawBufferPointer(rebasing: out[offset..<offset + part.count])
                                    .copyMemory(from: part)
                                offset += part.count
                            }
                            append(domain)
                            append(UnsafeRawBufferPointer(field))
                            append(UnsafeRawBufferPointer(provider))
                            append(UnsafeRawBufferPointer(client))
                            return body(UnsafeRawBufferPointer(out))
                        }
                    }
                }
            }
        }
    }
}
