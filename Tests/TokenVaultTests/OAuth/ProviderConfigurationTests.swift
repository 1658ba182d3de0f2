import Foundation
import TokenVault
import XCTest

final class ProviderConfigurationTests: XCTestCase {
    func testAllNineZohoDataCentres() throws {
        let expected = [
            "us": "https://accounts.zoho.com/oauth/v2/token", "eu": "https://accounts.zoho.eu/oauth/v2/token",
            "in": "https://accounts.zoho.in/oauth/v2/token", "au": "https://accounts.zoho.com.au/oauth/v2/token",
            "jp": "https://accounts.zoho.jp/oauth/v2/token", "ca": "https://accounts.zohocloud.ca/oauth/v2/token",
            "sa": "https://accounts.zoho.sa/oauth/v2/token", "cn": "https://accounts.zoho.com.cn/oauth/v2/token",
            "uk": "https://accounts.zoho.uk/oauth/v2/token",
        ]
        XCTAssertEqual(ZohoDataCenter.allCases.count, 9)
        for (code, url) in expected {
            let providers = try OAuthProvider.zohoFromEnvironment([
                "ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET": "s", "ZOHO_DATA_CENTER": code.uppercased(),
            ])
            XCTAssertEqual(providers.map(\.name), ["zoho_crm", "zoho_calendar"])
            XCTAssertEqual(providers.map(\.tokenURL.absoluteString), [url, url], code)
            XCTAssertEqual(providers.first?.refreshRateLimit, .init(count: 10, window: 600))
        }
        XCTAssertEqual(ZohoDataCenter.canada.apiDomain, "https://www.zohoapis.ca")
        XCTAssertEqual(ZohoDataCenter.unitedKingdom.apiDomain, "https://www.zohoapis.uk")
    }

    /// Every data centre's accounts server is trusted for accounts that live there; `ZOHO_ACCOUNTS_URL_<DC>`
    /// replaces one (a test endpoint), and the authorization and revocation URLs follow the default's.
    func testEveryDataCentreIsTrustedAndEachCanBeOverridden() throws {
        let providers = try OAuthProvider.zohoFromEnvironment([
            "ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET": "s", "ZOHO_DATA_CENTER": "eu",
            "ZOHO_ACCOUNTS_URL_UK": "http://127.0.0.1:9002",
        ])
        let zoho = try XCTUnwrap(providers.first)
        XCTAssertEqual(zoho.accountsServers.count, 9)
        XCTAssertEqual(zoho.accountsServers["uk"]?.absoluteString, "http://127.0.0.1:9002")
        XCTAssertEqual(zoho.accountsServers["us"]?.absoluteString, "https://accounts.zoho.com")
        XCTAssertEqual(zoho.authorizationURL?.absoluteString, "https://accounts.zoho.eu/oauth/v2/auth")
        XCTAssertEqual(zoho.revocationURL?.absoluteString, "https://accounts.zoho.eu/oauth/v2/token/revoke")
        XCTAssertEqual(zoho.authorizationParameters, ["access_type": "offline", "prompt": "consent"])
        XCTAssertEqual(zoho.scopeSeparator, ",")
        XCTAssertThrowsError(
            try OAuthProvider.zohoFromEnvironment([
                "ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET": "s", "ZOHO_ACCOUNTS_URL_EU": "ftp://x",
            ]))
    }

    func testDefaultsToUSAndAccountsURLOverrides() throws {
        let us = try OAuthProvider.zohoFromEnvironment(["ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET": "s"])
        XCTAssertEqual(us.first?.tokenURL.absoluteString, "https://accounts.zoho.com/oauth/v2/token")
        let local = try OAuthProvider.zohoFromEnvironment([
            "ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET": "s", "ZOHO_ACCOUNTS_URL": "http://127.0.0.1:8080",
            "ZOHO_REFRESH_TOKEN": "1000.rt",
        ])
        XCTAssertEqual(local.first?.tokenURL.absoluteString, "http://127.0.0.1:8080/oauth/v2/token")
        XCTAssertEqual(local.first?.fallbackRefreshToken?.reveal(), "1000.rt")
    }

    func testNoZohoVariablesMeansNoZohoProviders() throws {
        XCTAssertTrue(try OAuthProvider.zohoFromEnvironment([:]).isEmpty)
    }

    func testBadZohoSettingsAreRefusedWithoutEchoingTheSecret() {
        let cases: [([String: String], String)] = [
            (["ZOHO_CLIENT_ID": "1000.X"], "neither ZOHO_CLIENT_SECRET nor ZOHO_CLIENT_SECRET_FILE is"),
            (["ZOHO_CLIENT_SECRET": "topsecret"], "ZOHO_CLIENT_ID is not"),
            (
                ["ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET": "topsecret", "ZOHO_DATA_CENTER": "mars"],
                "us, eu, in"
            ),
            (
                ["ZOHO_CLIENT_ID": "1000.X", "ZOHO_CLIENT_SECRET": "topsecret", "ZOHO_ACCOUNTS_URL": "ftp://x"],
                "http(s) URL"
            ),
        ]
        for (environment, expected) in cases {
            XCTAssertThrowsError(try OAuthProvider.zohoFromEnvironment(environment)) { error in
                let error = error as? VaultError
                XCTAssertEqual(error?.code, .providerConfiguration)
                XCTAssertTrue(error?.message.contains(expected) ?? false, "\(String(describing: error))")
                XCTAssertFalse(error?.message.contains("topsecret") ?? true)
            }
        }
    }

    func testProviderDescriptionRedactsTheSecret() {
        let provider = OAuthProvider.zoho("zoho_crm", clientID: "1000.X", clientSecret: Secret("topsecret"))
        XCTAssertFalse("\(provider)".contains("topsecret"))
        XCTAssertFalse(String(reflecting: provider).contains("topsecret"))
    }

    func testRefreshMarginFromTheEnvironment() throws {
        let key = VaultKey.generate().exportBase64()
        let configuration = try VaultConfiguration.fromEnvironment([
            "TOKEN_VAULT_KEY": key, "TOKEN_VAULT_REFRESH_MARGIN": "120",
        ])
        XCTAssertEqual(configuration.refreshMargin, 120)
        XCTAssertThrowsError(
            try VaultConfiguration.fromEnvironment(["TOKEN_VAULT_KEY": key, "TOKEN_VAULT_REFRESH_MARGIN": "soon"]))
    }
}
