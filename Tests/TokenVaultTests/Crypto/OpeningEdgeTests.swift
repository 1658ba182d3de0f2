import XCTest

@testable import TokenVault

/// The edges where the opener and docs/ciphertext-format.md must agree: a value that authenticates but holds no
/// token (empty) or no text (not UTF-8) is refused, by every opener and by verify; ids are compared as bytes.
/// The first two tests replay what the open-row fuzz target found (Tests/Fuzz/Corpus/open-row/crash-*).
final class OpeningEdgeTests: XCTestCase {
    private let client = "acme-corp"
    private let provider = "zoho_crm"
    private let token = "1000.3c7fe0f9f969482269f2837c9db01dc7.6c22aaf4c7d1a8c66537d399fd47e899"

    private func makeSealer() throws -> Sealer { Sealer(keyring: try Keyring(current: VaultKey.generate())) }

    private func context(_ field: TokenField, client: String? = nil) -> SealContext {
        SealContext(field: field, provider: provider, clientID: client ?? self.client)
    }

    /// A row whose tokens were sealed as given, bypassing the store's checks (as another program holding the key
    /// could write them).
    private func row(_ sealer: Sealer, access: [UInt8]?, refresh: [UInt8]) -> SealedRow {
        SealedRow(
            clientID: client, provider: provider,
            accessToken: access.map { sealer.seal(Secret(bytes: $0), context: context(.accessToken)) },
            refreshToken: sealer.seal(Secret(bytes: refresh), context: context(.refreshToken)),
            keyID: sealer.keyring.current.id, expiresAt: nil, scopes: nil, metadataJSON: "{}")
    }

    // Fuzz crash 1 (the empty input): an empty token, sealed, opened as an empty token.
    func testASealedEmptyTokenIsRefusedByEveryOpener() throws {
        let sealer = try makeSealer()
        for (access, refresh) in [([UInt8]?.some([]), Array(token.utf8)), (Array(token.utf8), []), (nil, [])] {
            let row = row(sealer, access: access, refresh: refresh)
            let field = access == [] ? "access_token" : "refresh_token"
            let mentions = [field, client, provider, "17 bytes", "never stores an empty token"]
            CryptoAssert.throwsVaultError(.malformedCiphertext, mentioning: mentions, secrets: [token]) {
                try sealer.openRow(row)
            }
            if access == [] {
                CryptoAssert.throwsVaultError(.malformedCiphertext, mentioning: mentions) {
                    try sealer.openAccessToken(row)
                }
            }
            let failures = sealer.failures(opening: row)
            XCTAssertEqual(failures.map(\.field.rawValue), [field])
            XCTAssertEqual(failures.map { VerificationReport.Failure.reason($0.error.code) }, ["malformed"])
        }
    }

    func testCiphertextsUpToFormatByteAndMacAreMalformed() throws {
        let sealer = try makeSealer()
        let sealed = sealer.seal(Secret(token), context: context(.refreshToken))
        for length in 0...Sealer.overhead {
            let cut = SealedValue(ciphertext: Array(sealed.ciphertext.prefix(length)), nonce: sealed.nonce)
            let expected = length == Sealer.overhead ? "never stores an empty token" : "\(length) bytes, shorter than"
            CryptoAssert.throwsVaultError(.malformedCiphertext, mentioning: [expected], secrets: [token]) {
                try sealer.open(cut, keyID: sealer.keyring.current.id, context: context(.refreshToken))
            }
        }
    }

    // Fuzz crash 2: an access token of 70 bytes ending in 0xFF bytes opened (as U+FFFD), and verify found no fault.
    func testAPlaintextThatIsNotUTF8IsRefusedByEveryOpenerAndVerify() throws {
        let sealer = try makeSealer()
        let notText: [[UInt8]] = [
            Array("1000.3c7fe0f9f969482269f2837c9db01dc7.6c22aaf4c7d1a8c66537d399fd47e39e5".utf8)
                + [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            [0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], Array("ok".utf8) + [0xe2, 0x82],
        ]
        for bytes in notText {
            let accessRow = row(sealer, access: bytes, refresh: Array(token.utf8))
            let mentions = ["access_token", client, provider, "not UTF-8", sealer.keyring.current.id.rawValue]
            CryptoAssert.throwsVaultError(.malformedCiphertext, mentioning: mentions) { try sealer.openRow(accessRow) }
            CryptoAssert.throwsVaultError(.malformedCiphertext, mentioning: mentions) {
                try sealer.openAccessToken(accessRow)
            }
            XCTAssertEqual(sealer.failures(opening: accessRow).map(\.field), [.accessToken])

            let refreshRow = row(sealer, access: Array(token.utf8), refresh: bytes)
            CryptoAssert.throwsVaultError(.malformedCiphertext, mentioning: ["refresh_token", "not UTF-8"]) {
                try sealer.openRow(refreshRow)
            }
            XCTAssertEqual(try sealer.openAccessToken(refreshRow)?.reveal(), token)
            let failures = sealer.failures(opening: refreshRow)
            XCTAssertEqual(failures.map(\.field), [.refreshToken])
            XCTAssertEqual(failures.map { VerificationReport.Failure.reason($0.error.code) }, ["malformed"])
        }
    }

    func testRotationReportsANonUTF8PlaintextInsteadOfResealingIt() throws {
        let old = try makeSealer()
        let rotated = Sealer(keyring: try Keyring(current: VaultKey.generate(), previous: [old.keyring.current]))
        let result = rotated.resealRows([row(old, access: nil, refresh: [0x31, 0xff])])
        XCTAssertTrue(result.resealed.isEmpty)
        XCTAssertEqual(result.failures.map(\.failure.error.code), [.malformedCiphertext])
    }

    func testUTF8TextOfEveryScalarLengthOpens() throws {
        let sealer = try makeSealer()
        for text in ["a", "tökén-✓", "東京", "🔑", "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}"] {
            let opened = try sealer.openRow(row(sealer, access: Array(text.utf8), refresh: Array(text.utf8)))
            XCTAssertEqual(opened.access?.reveal(), text)
            XCTAssertEqual(opened.refresh.reveal(), text)
        }
    }

    /// The check agrees with the standard library's validation on random bytes, mostly non-ASCII.
    func testTheUTF8CheckAgreesWithTheStandardLibrary() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let bytes = (0..<Int.random(in: 0...6, using: &generator)).map { _ in
                [0x41, 0x7f, 0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff].randomElement(
                    using: &generator)! as UInt8
            }
            XCTAssertEqual(
                Secret(bytes: bytes).isValidUTF8, String(validating: bytes, as: UTF8.self) != nil, "\(bytes)")
        }
    }

    func testTheStoreRefusesAnEmptyTokenAndOneThatIsNotUTF8() throws {
        let sealer = try makeSealer()
        let cases: [(TokenSet, [String])] = [
            (TokenSet(accessToken: nil, refreshToken: Secret("")), ["refresh_token is empty"]),
            (TokenSet(accessToken: Secret(""), refreshToken: Secret(token)), ["access_token is empty"]),
            (TokenSet(accessToken: nil, refreshToken: Secret(bytes: [0x31, 0xff])), ["refresh_token", "UTF-8"]),
            (
                TokenSet(accessToken: Secret(bytes: [0xc0, 0x80]), refreshToken: Secret(token)),
                ["access_token", "UTF-8"]
            ),
        ]
        for (tokens, mentions) in cases {
            CryptoAssert.throwsVaultError(.invalidInput, mentioning: mentions, secrets: [token]) {
                try sealer.sealRow(tokens, client: client, provider: provider)
            }
        }
    }

    /// Ids are bytes, never normalized: "café" precomposed (NFC) and decomposed (NFD) are equal Swift strings but
    /// two rows, and a value sealed for one does not open as the other, with the subkey cache warm or cold.
    func testCanonicallyEquivalentIdsAreDifferentRows() throws {
        let composed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        XCTAssertEqual(composed, decomposed)
        let sealer = try makeSealer()
        for (sealedFor, openedAs) in [(composed, decomposed), (decomposed, composed)] {
            for (sealedProvider, openedProvider) in [(provider, provider), (sealedFor, openedAs)] {
                let sealed = try sealer.sealRow(
                    TokenSet(accessToken: Secret(token), refreshToken: Secret(token)), client: sealedFor,
                    provider: sealedProvider)
                XCTAssertEqual(try sealer.openRow(sealed).refresh.reveal(), token)  // the subkeys are now cached
                var moved = sealed
                moved.clientID = openedAs
                moved.provider = openedProvider
                CryptoAssert.throwsVaultError(.authenticationFailed, secrets: [token]) { try sealer.openRow(moved) }
                CryptoAssert.throwsVaultError(.authenticationFailed, secrets: [token]) {
                    try sealer.openAccessToken(moved)
                }
                XCTAssertEqual(sealer.failures(opening: moved).map(\.field), [.accessToken, .refreshToken])
                XCTAssertNotEqual(
                    SealContext(field: .refreshToken, provider: sealedProvider, clientID: sealedFor).encoded,
                    SealContext(field: .refreshToken, provider: openedProvider, clientID: openedAs).encoded)
            }
        }
    }
}
