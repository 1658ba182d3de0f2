import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension VaultKey {
    /// Reads a key from a file holding its base64 (surrounding whitespace is ignored).
    /// The file's bytes are read into wiped memory, never into an ordinary string.
    ///
    /// - Throws: `.keyConfiguration` when the file cannot be read, users other than its owner may read or change
    ///   it (libpq's rule for private keys: 0600, or 0640 when root owns it), or it does not hold base64 of
    ///   32 bytes.
    public init(contentsOfFile path: String) throws(VaultError) {
        try self.init(contentsOfFile: path, variable: nil)
    }

    /// `init(contentsOfFile:)`, its errors naming the environment variable that named the file, when one did.
    init(contentsOfFile path: String, variable: String?) throws(VaultError) {
        let (contents, length) = try Self.readKeyFile(
            path: path, variable: variable, noun: "the key file", holding: "the base64 key", limit: 4096,
            tooLarge: "is larger than a key; it must hold only the base64 key")
        let decoded = contents.withUnsafeBytes { bytes in
            Self.decodeKey(Self.trimmed(UnsafeRawBufferPointer(rebasing: bytes[0..<length])))
        }
        switch decoded {
        case .success(let material):
            self.init(material: material)
        case .failure(let problem):
            throw VaultError(
                .keyConfiguration,
                "the key file \(Self.named(by: variable))(\(path)) \(problem). \(Self.howToMakeAKey)")
        }
    }

    /// Keys from a file holding one base64 key per line (blank lines and lines starting with # are ignored),
    /// for `TOKEN_VAULT_PREVIOUS_KEYS_FILE`. Read into wiped memory, like the current key's file. Errors name the
    /// line, never its content.
    static func keys(fromFile path: String, variable: String?) throws(VaultError) -> [VaultKey] {
        let (contents, length) = try Self.readKeyFile(
            path: path, variable: variable, noun: "the file", holding: "base64 keys, one per line", limit: 1 << 16,
            tooLarge: "holds 64 KiB or more; it must hold only base64 keys, one per line, and comments")
        let parsed = contents.withUnsafeBytes { (bytes) -> Result<[VaultKey], VaultError> in
            Result { () throws(VaultError) in
                try keys(inKeyFileText: UnsafeRawBufferPointer(rebasing: bytes[0..<length])) {
                    "line \($0) of \(variable ?? "the file") (\(path))"
                }
            }
        }
        return try parsed.get()
    }

    /// `bytes` without the ASCII whitespace around them.
    static func trimmed(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }
        var start = 0
        var end = bytes.count
        while start < end && isSpace(bytes[start]) { start += 1 }
        while end > start && isSpace(bytes[end - 1]) { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    /// The whole file, read into wiped memory once ``checkAccess(descriptor:path:variable:guarding:code:)`` allows
    /// it, and its length. `limit` bytes or more are refused with `tooLarge`. Errors have `code` and call what the
    /// file protects `guarding` ("the key", "the secret").
    static func readKeyFile(
        path: String, variable: String?, noun: String, holding: String, limit: Int, tooLarge: String,
        guarding: String = "the key", code: VaultError.Code = .keyConfiguration
    ) throws(VaultError) -> (SecureBuffer, Int) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw VaultError(
                code,
                "cannot read \(noun) \(Self.named(by: variable))(\(path)): \(reason). "
                    + "Check the path and that this user may read it.")
        }
        defer { close(descriptor) }
        try Self.checkAccess(descriptor: descriptor, path: path, variable: variable, guarding: guarding, code: code)
        var length = 0
        var readError: Int32 = 0
        let contents = SecureBuffer.make(
            count: limit,
            filling: { buffer in
                while length < limit {
                    let got = read(descriptor, buffer.baseAddress! + length, limit - length)
                    if got < 0 && errno == EINTR { continue }
                    if got < 0 { readError = errno }
                    if got <= 0 { break }
                    length += got
                }
            })
        guard readError == 0 else {
            throw VaultError(
                code,
                "cannot read \(noun) \(Self.named(by: variable))(\(path)): \(String(cString: strerror(readError))). "
                    + "It must be a regular file holding \(holding).")
        }
        guard length < limit else {
            throw VaultError(code, "\(noun) \(Self.named(by: variable))(\(path)) \(tooLarge).")
        }
        return (contents, length)
    }
}

extension VaultKey {
    /// Refuses a key file that users other than this one could read or change, by libpq's rule for a client's
    /// private key file. Checked on the open descriptor, so a symbolic link (as Kubernetes mounts secrets) is
    /// judged by the file it points to; a pipe (`<(…)`) is judged by its own mode, and a directory is left to the
    /// read, which reports it.
    static func checkAccess(
        descriptor: Int32, path: String, variable: String?, guarding: String = "the key",
        code: VaultError.Code = .keyConfiguration
    ) throws(VaultError) {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw VaultError(
                code,
                "cannot check who may read the file \(Self.named(by: variable))(\(path)): "
                    + "\(String(cString: strerror(errno))).")
        }
        guard (info.st_mode & S_IFMT) != S_IFDIR else { return }
        if let problem = accessProblem(mode: info.st_mode & 0o777, owner: info.st_uid, guarding: guarding) {
            throw VaultError(code, "the file \(Self.named(by: variable))(\(path)) \(problem)")
        }
    }

    /// Why a key file with these permission bits and owner must not be used, or nil: libpq's rule. Owned by root,
    /// its group may read it (0640 or less), so that a service can read a root-owned secret through its group;
    /// owned by anyone else, group and others get nothing (0600 or less). Who owns it otherwise does not matter:
    /// a file this restricted that the service can read is the service's, or the service runs as root.
    static func accessProblem(mode: mode_t, owner: uid_t, guarding: String = "the key") -> String? {
        let allowed: mode_t = owner == 0 ? 0o740 : 0o700
        guard mode & ~allowed == 0 else {
            return "has mode 0\(String(mode, radix: 8)): other users could read or change \(guarding). Run "
                + "`chmod 600` on it (640 is allowed when root owns it and the service reads it through its group); "
                + "for a mounted secret, set its mode (Kubernetes: defaultMode 0440 with fsGroup, or 0400; Docker "
                + "swarm: mode 0400)."
        }
        return nil
    }

    /// "named by VARIABLE " when an environment variable named the file, else nothing.
    static func named(by variable: String?) -> String {
        variable.map { "named by \($0) " } ?? ""
    }
}

extension Secret {
    /// A secret (an OAuth client secret) read from a file, surrounding whitespace ignored, under the key files'
    /// rules: read into wiped memory, never into a string, and refused when users other than its owner may read or
    /// change the file. Errors name the environment variable that named the file, never its contents.
    init(contentsOfFile path: String, variable: String?) throws(VaultError) {
        let (contents, length) = try VaultKey.readKeyFile(
            path: path, variable: variable, noun: "the secret file", holding: "the secret", limit: 4096,
            tooLarge: "is larger than a client secret may be", guarding: "the secret", code: .providerConfiguration)
        let secret = contents.withUnsafeBytes { bytes -> Secret? in
            let value = VaultKey.trimmed(UnsafeRawBufferPointer(rebasing: bytes[0..<length]))
            return value.isEmpty ? nil : Secret(bytes: value)
        }
        guard let secret else {
            throw VaultError(
                .providerConfiguration, "the secret file \(VaultKey.named(by: variable))(\(path)) is empty.")
        }
        self = secret
    }
}
