import Foundation
import XCTest

@testable import TokenVault

/// Secrets and keys print as `<redacted>` however they are printed, and so do the types that hold them.
final class CryptoRedactionTests: XCTestCase {
    private let token = "1000.3c7fe0f9f969482269f2837c9db01dc7.6c22aaf4c7d1a8c66537d399fd47e899"

    /// Every way a value ends up as text: print, interpolation, debugPrint, dump, and inside a collection.
    private func renderings(of value: Any) -> [String] {
        var dumped = ""
        dump(value, to: &dumped)
        return [
            String(describing: value), String(reflecting: value), "\(value)", dumped,
            "\([value])", String(reflecting: Optional(value)),
        ]
    }

    private func assertNothingLeaks(
        _ value: Any, secrets: [String], file: StaticString = #filePath, line: UInt = #line
    ) {
        for text in renderings(of: value) {
            for secret in secrets {
                XCTAssertFalse(text.contains(secret), "leaks a secret: \(text)", file: file, line: line)
            }
        }
    }

    func testSecretPrintsAsRedacted() {
        let secret = Secret(token)
        XCTAssertEqual(secret.description, "<redacted>")
        XCTAssertEqual(secret.debugDescription, "<redacted>")
        XCTAssertEqual("\(secret)", "<redacted>")
        XCTAssertEqual(String(reflecting: secret), "<redacted>")
        XCTAssertTrue(Mirror(reflecting: secret).children.isEmpty)
        for text in renderings(of: secret) { XCTAssertTrue(text.contains("<redacted>"), text) }
        assertNothingLeaks(secret, secrets: [token, String(token.prefix(12))])
        assertNothingLeaks(Secret(bytes: Array("tökén-✓".utf8)), secrets: ["tökén", "t\\u{f6}"])
    }

    func testVaultKeyPrintsOnlyItsID() throws {
        let key = try VaultKey(base64: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        XCTAssertEqual(key.description, "VaultKey(id: ea7aa2a68d2ab3c9c8e24a45f4828f35, material: <redacted>)")
        XCTAssertEqual(Mirror(reflecting: key).children.map(\.label), ["id"])
        for text in renderings(of: key) { XCTAssertTrue(text.contains("ea7aa2a68d2ab3c9c8e24a45f4828f35"), text) }
        assertNothingLeaks(key, secrets: CryptoAssert.secretForms(of: key) + ["0x0001", "[0, 1, 2"])
        let generated = VaultKey.generate()
        assertNothingLeaks(generated, secrets: CryptoAssert.secretForms(of: generated))
    }

    func testKeyringPrintsNoKey() throws {
        let (current, previous) = (VaultKey.generate(), VaultKey.generate())
        let keyring = try Keyring(current: current, previous: [previous])
        assertNothingLeaks(
            keyring, secrets: CryptoAssert.secretForms(of: current) + CryptoAssert.secretForms(of: previous))
        assertNothingLeaks(Sealer(keyring: keyring), secrets: CryptoAssert.secretForms(of: current))
    }

    func testTokenSetAndStoredTokensPrintNoToken() {
        let refresh = "1000.b28a05f44630742839e5784a960c883c.07ffd47810970ef106e36c1f44305cdd"
        let tokens = TokenSet(
            accessToken: Secret(token), refreshToken: Secret(refresh), expiresAt: Date(timeIntervalSince1970: 0),
            scopes: "ZohoCRM.modules.ALL", metadata: ["api_domain": .string("https://www.zohoapis.com")])
        XCTAssertTrue(tokens.description.contains("ZohoCRM.modules.ALL"))
        assertNothingLeaks(tokens, secrets: [token, refresh])

        let stored = StoredTokens(
            clientID: "acme-corp", provider: "zoho_crm", accessToken: Secret(token), refreshToken: Secret(refresh),
            expiresAt: nil, scopes: nil, metadataJSON: "{}", keyID: KeyID(rawValue: "ea7aa2a68d2ab3c9c8e24a45f4828f35"),
            createdAt: Date(), updatedAt: Date(), version: 1)
        XCTAssertTrue(stored.description.contains("acme-corp"))
        assertNothingLeaks(stored, secrets: [token, refresh])
    }

    /// A vault, its configuration, a request to a token endpoint, its answer and an error wrapping a transport's
    /// failure: none prints the database password, the client secret, a grant or a token.
    func testTheTypesAroundTheVaultPrintNoSecret() throws {
        let password = "hunter2-database-password"
        let clientSecret = "client-secret-9f8e7d"
        var configuration = VaultConfiguration(
            databaseURL: "postgresql://vault:\(password)@db.internal/vault", keyring: try Keyring(current: .generate()))
        configuration.register(
            .zoho(
                "zoho_crm", clientID: "1000.app", clientSecret: Secret(clientSecret),
                fallbackRefreshToken: Secret(token)))
        let vault = try Vault(configuration: configuration)
        assertNothingLeaks(configuration, secrets: [password, clientSecret, token])
        assertNothingLeaks(vault, secrets: [password, clientSecret, token])

        let request = TokenEndpointRequest(
            url: URL(string: "https://accounts.zoho.com/oauth/v2/token")!,
            headers: [("Authorization", "Basic \(clientSecret)"), ("Accept", "application/json")],
            body: Array("grant_type=refresh_token&refresh_token=\(token)&client_secret=\(clientSecret)".utf8),
            timeout: 10)
        assertNothingLeaks(request, secrets: [clientSecret, token])
        XCTAssertTrue("\(request)".contains("Accept: application/json"), "\(request)")
        let response = TokenEndpointResponse(status: 200, body: Array(#"{"access_token":"\#(token)"}"#.utf8))
        assertNothingLeaks(response, secrets: [token])

        struct TransportFailure: Error { let request: TokenEndpointRequest; let body: String }
        let error = VaultError(
            .providerError, "could not reach the token endpoint.",
            underlying: TransportFailure(request: request, body: "refresh_token=\(token)"))
        assertNothingLeaks(error, secrets: [clientSecret, token])
        XCTAssertTrue(error.debugDescription.contains("underlying: TransportFailure"), error.debugDescription)
    }
}
