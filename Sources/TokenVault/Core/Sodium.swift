internal import CSodium

/// The only place that calls into libsodium. Everything else works with `SecureBuffer`, `Secret` and `VaultKey`.
package enum Sodium {
    package static let keyBytes = 32
    package static let nonceBytes = 24
    package static let macBytes = 16

    /// `sodium_init()` runs exactly once, the first time anything here is used.
    private static let initialized: Bool = sodium_init() >= 0

    static func ensureInitialized() {
        precondition(initialized, "libsodium failed to initialize (sodium_init)")
    }

    package static func randomBytes(_ buffer: UnsafeMutableRawBufferPointer) {
        ensureInitialized()
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        randombytes_buf(base, buffer.count)
    }

    /// A hint to the CPU (no effect on results): start loading `address` into the caches.
    @inline(__always)
    static func prefetch(_ address: UnsafeRawPointer) {
        token_vault_prefetch(address)
    }

    static func zero(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        sodium_memzero(base, buffer.count)
    }

    /// Constant-time comparison of two buffers of the same length.
    static func constantTimeEqual(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
        guard lhs.count == rhs.count else { return false }
        guard lhs.count > 0, let left = lhs.baseAddress, let right = rhs.baseAddress else { return true }
        return sodium_memcmp(left, right, lhs.count) == 0
    }

    /// Guarded, locked (unswappable) memory from `sodium_malloc`; wiped and released by `guardedFree`.
    static func guardedAllocate(_ count: Int) -> UnsafeMutableRawPointer {
        ensureInitialized()
        guard let pointer = sodium_malloc(count) else {
            fatalError("sodium_malloc(\(count)) failed: out of memory or RLIMIT_MEMLOCK too low")
        }
        return pointer
    }

    static func guardedFree(_ pointer: UnsafeMutableRawPointer) {
        sodium_free(pointer)
    }

    static func makeReadOnly(_ pointer: UnsafeMutableRawPointer) {
        _ = sodium_mprotect_readonly(pointer)
    }

    static func makeReadWrite(_ pointer: UnsafeMutableRawPointer) {
        _ = sodium_mprotect_readwrite(pointer)
    }

    /// Keyed BLAKE2b (`crypto_generichash`) of `message` under `key`, `output.count` bytes long (16...64).
    static func keyedHash(
        into output: UnsafeMutableRawBufferPointer, message: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer
    ) {
        ensureInitialized()
        let result = crypto_generichash(
            output.baseAddress!.assumingMemoryBound(to: UInt8.self), output.count,
            message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
            key.baseAddress?.assumingMemoryBound(to: UInt8.self), key.count)
        precondition(result == 0, "crypto_generichash failed")
    }

    /// `crypto_secretbox_easy`: writes MAC || ciphertext (`message.count + macBytes` bytes) into `output`.
    package static func secretboxSeal(
        into output: UnsafeMutableRawBufferPointer, message: UnsafeRawBufferPointer,
        nonce: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer
    ) {
        ensureInitialized()
        precondition(output.count == message.count + macBytes && nonce.count == nonceBytes && key.count == keyBytes)
        var empty: UInt8 = 0
        let result = withUnsafeMutablePointer(to: &empty) { emptyPointer in
            crypto_secretbox_easy(
                output.baseAddress!.assumingMemoryBound(to: UInt8.self),
                message.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(emptyPointer),
                UInt64(message.count),
                nonce.baseAddress!.assumingMemoryBound(to: UInt8.self),
                key.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        precondition(result == 0, "crypto_secretbox_easy failed")
    }

    /// `crypto_secretbox_open_easy`: returns false when the MAC does not verify.
    package static func secretboxOpen(
        into output: UnsafeMutableRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        nonce: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer
    ) -> Bool {
        ensureInitialized()
        guard ciphertext.count >= macBytes, output.count == ciphertext.count - macBytes,
            nonce.count == nonceBytes, key.count == keyBytes
        else { return false }
        var scratch: UInt8 = 0
        return withUnsafeMutablePointer(to: &scratch) { scratchPointer in
            crypto_secretbox_open_easy(
                output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? scratchPointer,
                ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(ciphertext.count),
                nonce.baseAddress!.assumingMemoryBound(to: UInt8.self),
                key.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
        }
    }

    /// Decodes standard (padded) base64 straight into `output`, so decoded key bytes never sit in an ordinary array.
    /// Returns the decoded length, or nil when the text is not valid base64 or does not fit.
    static func decodeBase64(_ text: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        ensureInitialized()
        var length = 0
        var end: UnsafePointer<CChar>? = nil
        let result = sodium_base642bin(
            output.baseAddress!.assumingMemoryBound(to: UInt8.self), output.count,
            text.baseAddress?.assumingMemoryBound(to: CChar.self), text.count,
            nil, &length, &end, sodium_base64_VARIANT_ORIGINAL)
        guard result == 0 else { return nil }
        // sodium_base642bin stops at the first invalid character; insist that it consumed everything.
        if let end, let start = text.baseAddress {
            let consumed = UnsafeRawPointer(end) - start
            guard consumed == text.count else { return nil }
        }
        return length
    }

    /// The bytes standard base64 of `count` bytes takes, with one more for a terminator (libsodium's NUL, which
    /// ``encodeBase64(_:into:)`` replaces with a newline).
    static func base64EncodedLength(_ count: Int) -> Int {
        sodium_base64_encoded_len(count, sodium_base64_VARIANT_ORIGINAL)
    }

    /// Encodes `bytes` as standard base64 followed by a newline into `output`, which holds exactly
    /// ``base64EncodedLength(_:)`` bytes: no ordinary string ever holds the text.
    static func encodeBase64(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) {
        ensureInitialized()
        _ = sodium_bin2base64(
            output.baseAddress!.assumingMemoryBound(to: CChar.self), output.count,
            bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, sodium_base64_VARIANT_ORIGINAL)
        output[output.count - 1] = 0x0a
    }

    /// SHA-256 (`crypto_hash_sha256`) of `message`: 32 bytes, as PKCE's S256 challenge needs.
    static func sha256(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        ensureInitialized()
        var digest = [UInt8](repeating: 0, count: 32)
        let empty: [UInt8] = [0]
        digest.withUnsafeMutableBufferPointer { out in
            empty.withUnsafeBufferPointer { emptyPointer in
                _ = crypto_hash_sha256(
                    out.baseAddress!,
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptyPointer.baseAddress!,
                    UInt64(message.count))
            }
        }
        return digest
    }

    /// Base64url without padding (RFC 4648 section 5), as PKCE and `state` use.
    static func encodeBase64URL(_ bytes: UnsafeRawBufferPointer) -> String {
        ensureInitialized()
        let variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING
        let capacity = sodium_base64_encoded_len(bytes.count, variant)
        var output = [CChar](repeating: 0, count: capacity)
        output.withUnsafeMutableBufferPointer { out in
            _ = sodium_bin2base64(
                out.baseAddress!, capacity, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count,
                variant)
        }
        let text = String(decoding: output.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        output.withUnsafeMutableBytes { zero($0) }
        return text
    }

    /// Decodes unpadded base64url into exactly `count` bytes; nil when the text is not that.
    static func decodeBase64URL(_ text: String, count: Int) -> [UInt8]? {
        ensureInitialized()
        var output = [UInt8](repeating: 0, count: count)
        var length = 0
        var end: UnsafePointer<CChar>? = nil
        var text = text
        let ok = text.withUTF8 { input -> Bool in
            output.withUnsafeMutableBufferPointer { out in
                input.withMemoryRebound(to: CChar.self) { chars in
                    let result = sodium_base642bin(
                        out.baseAddress!, count, chars.baseAddress, chars.count, nil, &length, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING)
                    guard result == 0, let end, let start = chars.baseAddress else { return false }
                    return end - start == chars.count
                }
            }
        }
        guard ok, length == count else { return nil }
        return output
    }

    static func encodeBase64(_ bytes: UnsafeRawBufferPointer) -> String {
        ensureInitialized()
        let capacity = sodium_base64_encoded_len(bytes.count, sodium_base64_VARIANT_ORIGINAL)
        var output = [CChar](repeating: 0, count: capacity)
        output.withUnsafeMutableBufferPointer { out in
            _ = sodium_bin2base64(
                out.baseAddress!, capacity, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count,
                sodium_base64_VARIANT_ORIGINAL)
        }
        let text = String(decoding: output.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        output.withUnsafeMutableBytes { zero($0) }
        return text
    }
}
