import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension VaultKey {
    /// Reads a key from a file holding its base64 (surrounding whitespace is ignored).
    /// The file's bytes are read into wiped memory, never into an ordinary string.
    public init(contentsOfFile path: String) throws(VaultError) {
        let variable = Keyring.Variable.keyFile
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            throw VaultError(
                .keyConfiguration,
                "cannot read the key file named by \(variable) (\(path)): \(reason). "
                    + "Check the path and that this user may read it.")
        }
        defer { close(descriptor) }
        let limit = 4096
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
                .keyConfiguration,
                "cannot read the key file named by \(variable) (\(path)): \(String(cString: strerror(readError))). "
                    + "It must be a regular file holding the base64 key.")
        }
        guard length < limit else {
            throw VaultError(
                .keyConfiguration,
                "the key file named by \(variable) (\(path)) is larger than a key; it must hold only the base64 key.")
        }
        let decoded = contents.withUnsafeBytes { bytes in
            let isSpace: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }
            var start = 0
            var end = length
            while start < end && isSpace(bytes[start]) { start += 1 }
            while end > start && isSpace(bytes[end - 1]) { end -= 1 }
            return Self.decodeKey(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
        }
        switch decoded {
        case .success(let material):
            self.init(material: material)
        case .failure(let problem):
            throw VaultError(
                .keyConfiguration, "the key file named by \(variable) (\(path)) \(problem). \(Self.howToMakeAKey)")
        }
    }
}

extension VaultKey {
    /// Keys from a file holding one base64 key per line (blank lines and lines starting with # are ignored),
    /// for `TOKEN_VAULT_PREVIOUS_KEYS_FILE`. Errors name the line, never its content.
    static func keys(fromFile path: String, variable: String) throws(VaultError) -> [VaultKey] {
        let contents: String
        do {
            contents = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw VaultError(
                .keyConfiguration,
                "cannot read the file named by \(variable) (\(path)): \(reason). Check the path and that this user "
                    + "may read it.")
        }
        var keys: [VaultKey] = []
        for (index, line) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingASCIIWhitespace()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            keys.append(try VaultKey(base64: String(trimmed), name: "line \(index + 1) of \(variable) (\(path))"))
        }
        return keys
    }
}
