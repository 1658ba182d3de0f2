import Foundation

@testable import TokenVault

/// The known-answer vectors in `Keys/vectors/`, and hex helpers to read them.
enum CryptoVectors {
    struct TokenVaultFile: Decodable {
        var format: Int
        var keys: [Key]
        var seal: [Seal]
        var reject: [Reject]
    }

    struct Key: Decodable {
        var name: String
        var keyBase64: String
        var keyID: String

        enum CodingKeys: String, CodingKey {
            case name
            case keyBase64 = "key_base64"
            case keyID = "key_id"
        }
    }

    struct Seal: Decodable {
        var keyID, field, provider, clientID, plaintext: String
        var contextHex, subkeyHex, nonceHex, ciphertextHex: String

        enum CodingKeys: String, CodingKey {
            case field, provider, plaintext
            case keyID = "key_id"
            case clientID = "client_id"
            case contextHex = "context_hex"
            case subkeyHex = "subkey_hex"
            case nonceHex = "nonce_hex"
            case ciphertextHex = "ciphertext_hex"
        }
    }

    struct Reject: Decodable {
        var reason, keyID, field, provider, clientID, nonceHex, ciphertextHex: String

        enum CodingKeys: String, CodingKey {
            case reason, field, provider
            case keyID = "key_id"
            case clientID = "client_id"
            case nonceHex = "nonce_hex"
            case ciphertextHex = "ciphertext_hex"
        }
    }

    struct SecretboxFile: Decodable {
        var keyHex, nonceHex, messageHex, ciphertextHex: String

        enum CodingKeys: String, CodingKey {
            case keyHex = "key_hex"
            case nonceHex = "nonce_hex"
            case messageHex = "message_hex"
            case ciphertextHex = "ciphertext_hex"
        }
    }

    /// The folder holding Package.swift, found by walking up from this file.
    static let repositoryRoot: URL = {
        var folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("Package.swift").path) {
            precondition(folder.pathComponents.count > 1, "no Package.swift above \(#filePath)")
            folder.deleteLastPathComponent()
        }
        return folder
    }()

    static func load<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        let url = repositoryRoot.appendingPathComponent("Keys/vectors/\(name)")
        return try JSONDecoder().decode(T.self, from: Data(contentsOf: url))
    }

    static func tokenVault() throws -> TokenVaultFile { try load("token-vault-v1.json") }

    /// Public test keys A and B from token-vault-v1.json, by key id.
    static func keys() throws -> [String: VaultKey] {
        var keys: [String: VaultKey] = [:]
        for key in try tokenVault().keys { keys[key.keyID] = try VaultKey(base64: key.keyBase64) }
        return keys
    }

    static func bytes(hex: String) -> [UInt8] {
        let digits = Array(hex.utf8)
        precondition(digits.count % 2 == 0, "odd-length hex")
        func value(_ digit: UInt8) -> UInt8 {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
            default: preconditionFailure("not a hex digit: \(digit)")
            }
        }
        return stride(from: 0, to: digits.count, by: 2).map { value(digits[$0]) << 4 | value(digits[$0 + 1]) }
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
