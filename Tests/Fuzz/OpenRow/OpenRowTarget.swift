import Foundation
import TokenVault
import TokenVaultFuzzSupport

/// A stored row, as `Sealer.openRow`, `openAccessToken` and `failures(opening:)` (verify) read it. The input picks
/// the tokens (any bytes, also ones token-vault would never store), the ids and key they are sealed under, then how
/// the stored row differs: its ids, its key id, each ciphertext and nonce, the fields swapped. Every opener must
/// give the tokens back exactly when nothing that binds them changed and they are tokens (non-empty UTF-8), and
/// otherwise the error the format specifies (docs/ciphertext-format.md, "Opening"), with no token in its message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOpenRow(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    OpenRowTarget.run(bytes)
    return 0
}

enum OpenRowTarget {
    // The public test keys of Keys/vectors: the opener holds A as current and B as previous.
    static let keyA = try! VaultKey(base64: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
    static let keyB = try! VaultKey(base64: "oKGio6SlpqeoqaqrrK2ur7CxsrO0tba3uLm6u7y9vr8=")
    static let opener = Sealer(keyring: try! Keyring(current: keyA, previous: [keyB]))
    static let sealerB = Sealer(keyring: try! Keyring(current: keyB))

    enum Outcome: Equatable {
        case opens([UInt8])
        case fails(VaultError.Code)
    }

    static func run(_ bytes: [UInt8]) {
        var input = FuzzInput(bytes)
        let flags = input.byte()
        let hasAccess = flags & 1 == 0
        let client = flags & 2 != 0 ? text(input.chunk()) : "acme-corp"
        let provider = flags & 4 != 0 ? text(input.chunk()) : "zoho_crm"
        let sealingKey = flags & 8 != 0 ? keyB : keyA
        let accessPlaintext = input.chunk()
        let refreshPlaintext = input.chunk()

        // Sealed as another writer holding the key could: Sealer.seal checks nothing about the token.
        let sealer = flags & 8 != 0 ? sealerB : opener
        func seal(_ plaintext: [UInt8], _ field: TokenField) -> SealedValue {
            sealer.seal(
                Secret(bytes: plaintext), context: SealContext(field: field, provider: provider, clientID: client))
        }
        let access = hasAccess ? seal(accessPlaintext, .accessToken) : nil
        let refresh = seal(refreshPlaintext, .refreshToken)

        let changes = input.byte()
        let storedClient = changes & 1 != 0 ? text(input.chunk()) : client
        let storedProvider = changes & 2 != 0 ? text(input.chunk()) : provider
        let keyID: KeyID
        switch (changes >> 2) & 3 {
        case 1: keyID = sealingKey == keyA ? keyB.id : keyA.id
        case 2: keyID = KeyID(rawValue: text(input.chunk()))
        default: keyID = sealingKey.id
        }
        var storedAccess = access.map { mutate($0, &input) }
        var storedRefresh = mutate(refresh, &input)
        if changes & 0x10 != 0, let swapped = storedAccess {
            (storedAccess, storedRefresh) = (storedRefresh, swapped)
        }
        let row = SealedRow(
            clientID: storedClient, provider: storedProvider, accessToken: storedAccess, refreshToken: storedRefresh,
            keyID: keyID, expiresAt: nil, scopes: nil, metadataJSON: "{}")

        // What the format says each field gives.
        let idsSame = storedClient.utf8.elementsEqual(client.utf8) && storedProvider.utf8.elementsEqual(provider.utf8)
        let keyKnown =
            keyID.rawValue.utf8.elementsEqual(keyA.id.rawValue.utf8)
            || keyID.rawValue.utf8.elementsEqual(keyB.id.rawValue.utf8)
        let keySame = keyID.rawValue.utf8.elementsEqual(sealingKey.id.rawValue.utf8)
        func expected(_ stored: SealedValue, sealed: SealedValue, plaintext: [UInt8]) -> Outcome {
            guard keyKnown else { return .fails(.unknownKey) }
            guard stored.nonce.count == 24, stored.ciphertext.count > Sealer.overhead, stored.ciphertext[0] == 1 else {
                return .fails(.malformedCiphertext)
            }
            guard stored == sealed, idsSame, keySame else { return .fails(.authenticationFailed) }
            return String(validating: plaintext, as: UTF8.self) == nil
                ? .fails(.malformedCiphertext) : .opens(plaintext)
        }
        let accessExpected = storedAccess.map { expected($0, sealed: access!, plaintext: accessPlaintext) }
        let refreshExpected = expected(storedRefresh, sealed: refresh, plaintext: refreshPlaintext)

        // Tokens long enough not to be in a message by chance; looked for in the message without the ids it names
        // (which the input may have made equal to a token, or to a token's end).
        let secrets = [accessPlaintext, refreshPlaintext].filter { $0.count >= 8 }
        let ids = [client, provider, storedClient, storedProvider, keyID.rawValue]
        func requireNoSecret(in error: VaultError) {
            let message = Fuzz.utf8(of: error.message, without: ids)
            for secret in secrets {
                Fuzz.require(!Fuzz.bytes(message, contain: secret), "an error message holds a token: \(error.code)")
            }
        }
        func outcome(_ body: () throws(VaultError) -> Secret?) -> Outcome? {
            do {
                return try body().map { secret in .opens(secret.withUnsafeBytes { Array($0) }) }
            } catch {
                requireNoSecret(in: error)
                return .fails(error.code)
            }
        }

        // openRow: the access token's outcome first, then the refresh token's.
        let rowExpected: [Outcome] = {
            if case .fails(let code)? = accessExpected { return [.fails(code)] }
            if case .fails(let code) = refreshExpected { return [.fails(code)] }
            return [accessExpected, refreshExpected].compactMap { $0 }
        }()
        var rowActual: [Outcome] = []
        do {
            let (openedAccess, openedRefresh) = try opener.openRow(row)
            rowActual = [openedAccess, openedRefresh].compactMap { $0 }.map { .opens($0.withUnsafeBytes { Array($0) }) }
        } catch {
            requireNoSecret(in: error)
            rowActual = [.fails(error.code)]
        }
        Fuzz.require(
            rowActual == rowExpected, "openRow gave \(codes(rowActual)), the format says \(codes(rowExpected))")

        let accessActual = outcome { () throws(VaultError) in try opener.openAccessToken(row) }
        Fuzz.require(
            accessActual == accessExpected,
            "openAccessToken gave \(codes([accessActual])), the format says \(codes([accessExpected]))")

        // verify: every field that does not open, with its code.
        let failures = opener.failures(opening: row).map { "\($0.field.rawValue): \($0.error.code)" }
        var failuresExpected: [String] = []
        if case .fails(let code)? = accessExpected { failuresExpected.append("access_token: \(code)") }
        if case .fails(let code) = refreshExpected { failuresExpected.append("refresh_token: \(code)") }
        Fuzz.require(failures == failuresExpected, "verify found \(failures), the format says \(failuresExpected)")
    }

    /// One change to a sealed value, or none, as the input says.
    static func mutate(_ sealed: SealedValue, _ input: inout FuzzInput) -> SealedValue {
        var value = sealed
        switch input.byte() & 7 {
        case 1:
            let at = Int(input.byte()) % value.ciphertext.count
            value.ciphertext[at] ^= input.byte()
        case 2: value.ciphertext = Array(value.ciphertext.prefix(Int(input.byte())))
        case 3: value.ciphertext = input.chunk()
        case 4: value.ciphertext += input.chunk()
        case 5: value.nonce = input.chunk()
        case 6:
            let at = Int(input.byte()) % value.nonce.count
            value.nonce[at] ^= input.byte()
        case 7: value.ciphertext[0] = input.byte()
        default: break
        }
        return value
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Outcomes without the tokens, for a failure's message.
    static func codes(_ outcomes: [Outcome?]) -> String {
        outcomes.map { outcome -> String in
            switch outcome {
            case .opens(let bytes)?: return "opens (\(bytes.count) bytes)"
            case .fails(let code)?: return "\(code)"
            case nil: return "nil"
            }
        }.joined(separator: ", ")
    }
}

@main
enum Main {
    static func main() { Fuzz.main(fuzzOpenRow, replay: OpenRowTarget.run) }
}
