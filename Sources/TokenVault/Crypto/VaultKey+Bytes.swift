extension VaultKey {
    /// A key from its 32 raw bytes, as a KMS SDK returns a data key's plaintext (AWS KMS `GenerateDataKey` or
    /// `Decrypt` of an `AES_256` data key, Google Cloud KMS `decrypt`), without passing through a base64 `String`,
    /// which could not be wiped. The bytes are copied into guarded memory: wipe the SDK's copy when you can.
    ///
    /// - Throws: `.keyConfiguration` when `bytes` is not exactly 32 bytes long.
    public init(bytes: UnsafeRawBufferPointer) throws(VaultError) {
        guard bytes.count == Self.byteCount else {
            throw VaultError(
                .keyConfiguration,
                "the key bytes are \(bytes.count) bytes long, not 32: a key is 32 random bytes (an AES_256 data "
                    + "key of a KMS).")
        }
        self.init(material: SecureBuffer.make(copying: bytes, guarded: true))
    }

    /// A key from a ``Secret`` that holds its 32 raw bytes.
    ///
    /// - Throws: `.keyConfiguration` when the secret is not exactly 32 bytes long.
    public init(bytes: Secret) throws(VaultError) {
        let key = bytes.withUnsafeBytes { (raw) -> Result<VaultKey, VaultError> in
            Result { () throws(VaultError) in try VaultKey(bytes: raw) }
        }
        self = try key.get()
    }

    /// A key from a ``Secret`` that holds the key file's text: standard base64 of 32 bytes, surrounding whitespace
    /// ignored, as a secret manager or a KMS CLI returns it. Decoded without making a `String`. `name` is used in
    /// error messages, never the value.
    ///
    /// - Throws: `.keyConfiguration` when the text is empty, not standard base64, or not 32 bytes long.
    public init(base64Encoded text: Secret, name: String = "key") throws(VaultError) {
        let decoded = text.withUnsafeBytes { Self.decodeKey(Self.trimmed($0)) }
        switch decoded {
        case .success(let material):
            self.init(material: material)
        case .failure(let problem):
            throw VaultError(.keyConfiguration, "\(name) \(problem). \(Self.howToMakeAKey)")
        }
    }

    /// Calls `body` with the key as standard base64 with a trailing newline (the key file's format), in memory
    /// that is wiped afterwards: what `token-vault keygen` hands to a wrapping command.
    package func withKeyFileText<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let text = material.withUnsafeBytes { key in
            SecureBuffer.make(
                count: Sodium.base64EncodedLength(key.count),
                filling: { output in Sodium.encodeBase64(key, into: output) })
        }
        return try text.withUnsafeBytes(body)
    }

    /// Calls `body` with the key's 32 raw bytes, for a wrapping command that takes bytes (a KMS `encrypt`).
    package func withRawBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try material.withUnsafeBytes(body)
    }

    /// Keys from text in the key files' format: one base64 key per line; blank lines and lines starting with `#`
    /// are skipped. A bad line is reported as `describe(lineNumber)` followed by the problem, never by its content.
    package static func keys(
        inKeyFileText bytes: UnsafeRawBufferPointer, describe: (Int) -> String
    ) throws(VaultError) -> [VaultKey] {
        var keys: [VaultKey] = []
        var lineStart = 0
        var lineNumber = 0
        let length = bytes.count
        while lineStart <= length {
            let lineEnd = (lineStart..<length).first { bytes[$0] == 0x0a } ?? length
            lineNumber += 1
            let line = Self.trimmed(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<lineEnd]))
            lineStart = lineEnd + 1
            if line.isEmpty || line.first == UInt8(ascii: "#") { continue }
            switch Self.decodeKey(line) {
            case .success(let material):
                keys.append(VaultKey(material: material))
            case .failure(let problem):
                throw VaultError(.keyConfiguration, "\(describe(lineNumber)) \(problem). \(Self.howToMakeAKey)")
            }
        }
        return keys
    }
}
