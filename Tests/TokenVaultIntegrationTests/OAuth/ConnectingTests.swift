import Foundation
import Logging
import Synchronization
import TokenVault
import TokenVaultTesting
import XCTest

/// Connecting accounts through the authorization-code flow (state + PKCE), each account at its own data centre,
/// against two local endpoints that play Zoho's US and EU accounts servers.
final class ConnectingTests: DatabaseTestCase {
    var us: FakeTokenEndpoint!
    var eu: FakeTokenEndpoint!
    let redirect = "https://app.example/oauth/callback"

    override func setUp() async throws {
        us = try FakeTokenEndpoint.start(location: "us")
        eu = try FakeTokenEndpoint.start(location: "eu")
    }

    override func tearDown() async throws {
        us.stop()
        eu.stop()
        try await super.tearDown()
    }

    /// Zoho with the US data centre at `us` (the default) and the EU one at `eu`.
    func provider() -> OAuthProvider {
        .zoho(
            "zoho_crm", dataCenter: .us, clientID: us.clientID, clientSecret: Secret(us.clientSecret),
            accountsURL: us.baseURL, accountsServerOverrides: [.eu: eu.baseURL])
    }

    /// Begins on `vault`, consents at `at`, completes; returns the account.
    func connect(
        _ vault: Vault, client: String, at endpoint: FakeTokenEndpoint
    ) async throws -> ConnectedAccount {
        let request = try await vault.beginAuthorization(
            client: client, provider: "zoho_crm", redirectURI: redirect, scopes: ["ZohoCRM.modules.ALL"])
        let callback = try endpoint.approve(request.url)
        return try await vault.completeAuthorization(AuthorizationCallback(parsing: callback.absoluteString))
    }

    func testTheAuthorizationURLCarriesStatePKCEAndZohoOfflineAccess() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let request = try await fixture.vault.beginAuthorization(
            client: "acme", provider: "zoho_crm", redirectURI: redirect,
            scopes: ["ZohoCRM.modules.ALL", "ZohoCRM.users.READ"])
        let parts = try XCTUnwrap(URLComponents(url: request.url, resolvingAgainstBaseURL: false))
        XCTAssertEqual(parts.path, "/oauth/v2/auth")
        XCTAssertEqual(parts.port, us.port)
        let items = Dictionary(uniqueKeysWithValues: (parts.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        XCTAssertEqual(items["response_type"], "code")
        XCTAssertEqual(items["client_id"], us.clientID)
        XCTAssertEqual(items["redirect_uri"], redirect)
        XCTAssertEqual(items["scope"], "ZohoCRM.modules.ALL,ZohoCRM.users.READ")
        XCTAssertEqual(items["access_type"], "offline")
        XCTAssertEqual(items["prompt"], "consent")
        XCTAssertEqual(items["code_challenge_method"], "S256")
        XCTAssertEqual(items["code_challenge"]?.count, 43)
        XCTAssertEqual(items["state"], request.state.reveal())
        XCTAssertEqual(request.state.reveal().count, 64)
        XCTAssertFalse("\(request)".contains(request.state.reveal()), "the request prints without its state")

        // Kept hashed and sealed: neither the state nor anything readable as a verifier is in the table.
        let rows = try await fixture.sql(
            "SELECT encode(selector, 'hex'), encode(validator_hash, 'hex'), length(verifier_ciphertext), "
                + "client_id, provider, redirect_uri, scopes FROM token_vault_authorizations")
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(rows[0][1]?.count, 64)
        XCTAssertEqual(rows[0][2], "60", "format byte, MAC and the 43-character verifier")
        XCTAssertEqual(rows[0][3], "acme")
        XCTAssertEqual(rows[0][5], redirect)
        let dump = try await fixture.sql("SELECT t::text FROM token_vault_authorizations t")
        XCTAssertFalse(dump[0][0]?.contains(request.state.reveal()) ?? true)
    }

    /// One process serves a US and an EU account: each is exchanged, refreshed and revoked at its own server.
    func testEachAccountIsRefreshedAndRevokedAtItsOwnDataCentre() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let vault = fixture.vault
        let american = try await connect(vault, client: "us-customer", at: us)
        let european = try await connect(vault, client: "eu-customer", at: eu)
        XCTAssertEqual(american.accountsServer, us.baseURL.absoluteString)
        XCTAssertEqual(european.accountsServer, eu.baseURL.absoluteString)
        XCTAssertEqual(american.client, "us-customer")

        // The exchange went with the verifier and the redirect URI, each to the server the callback named.
        let euExchange = try XCTUnwrap(eu.receivedRequests.first { $0.form["grant_type"] == "authorization_code" })
        XCTAssertEqual(euExchange.form["redirect_uri"], redirect)
        XCTAssertEqual(euExchange.form["code_verifier"]?.count, 43)
        XCTAssertFalse(us.receivedRequests.contains { $0.form["code"] == euExchange.form["code"] })

        _ = try await fixture.sql("UPDATE oauth_tokens SET token_expiry = now() - interval '1 minute'")
        let usToken = try await vault.accessToken(client: "us-customer", provider: "zoho_crm")
        let euToken = try await vault.accessToken(client: "eu-customer", provider: "zoho_crm")
        XCTAssertTrue(usToken.refreshed)
        XCTAssertTrue(euToken.refreshed)
        XCTAssertEqual(us.receivedRequests.filter { $0.form["grant_type"] == "refresh_token" }.count, 1)
        XCTAssertEqual(eu.receivedRequests.filter { $0.form["grant_type"] == "refresh_token" }.count, 1)

        let events = vault.events()
        let deleted = try await vault.delete(client: "eu-customer", provider: "zoho_crm", revoke: true)
        XCTAssertTrue(deleted)
        XCTAssertEqual(eu.revocationCount, 1)
        XCTAssertEqual(us.revocationCount, 0)
        var iterator = events.makeAsyncIterator()
        let event = await iterator.next()
        XCTAssertEqual(event, .revoked(client: "eu-customer", provider: "zoho_crm"))
        let revoke = try XCTUnwrap(eu.receivedRequests.last)
        XCTAssertEqual(revoke.path, "/oauth/v2/token/revoke")
        XCTAssertEqual(revoke.form["token_type_hint"], "refresh_token")
        XCTAssertNil(revoke.query["token"], "the token only in the body, never in a URL")
        XCTAssertNotNil(revoke.form["token"])
        await assertVaultError(.notFound) { try await vault.fetch(client: "eu-customer", provider: "zoho_crm") }
        _ = try await vault.fetch(client: "us-customer", provider: "zoho_crm")
    }

    /// Whoever controls the callback's parameters must not make the vault send the code, the verifier or the
    /// client secret to a host of their choosing; the state stays usable for the honest callback.
    func testHostileAccountsServersAreRefusedBeforeAnythingIsSent() async throws {
        let attacker = try FakeTokenEndpoint.start(location: "eu")
        defer { attacker.stop() }
        let fixture = try await makeFixture(providers: [provider()])
        let request = try await fixture.vault.beginAuthorization(
            client: "acme", provider: "zoho_crm", redirectURI: redirect)
        let honest = try eu.approve(request.url)
        var parts = try XCTUnwrap(URLComponents(url: honest, resolvingAgainstBaseURL: false))
        let hostile = [
            attacker.baseURL.absoluteString, "https://accounts.zoho.eu.evil.example", "https://evil@accounts.zoho.eu",
            "https://accounts.zoho.eu/../evil", "http://accounts.zoho.eu", "https://accounts.zoho.eu:8443",
            "file:///etc/passwd", "https://accounts.zoho.com",  // a known host, but not the location's
            "\(eu.baseURL.absoluteString)?x=1", "javascript:alert(1)",
        ]
        for server in hostile {
            parts.queryItems = parts.queryItems!.map {
                $0.name == "accounts-server" ? URLQueryItem(name: $0.name, value: server) : $0
            }
            await assertVaultError(.accountsServerRefused) {
                try await fixture.vault.completeAuthorization(AuthorizationCallback(parsing: parts.url!.absoluteString))
            }
        }
        parts.queryItems = parts.queryItems!.map {
            $0.name == "location" ? URLQueryItem(name: $0.name, value: "evil") : $0
        }
        await assertVaultError(.accountsServerRefused) {
            try await fixture.vault.completeAuthorization(AuthorizationCallback(parsing: parts.url!.absoluteString))
        }
        XCTAssertTrue(attacker.receivedRequests.isEmpty, "nothing was sent to the attacker's server")
        XCTAssertFalse(eu.receivedRequests.contains { $0.path == "/oauth/v2/token" })

        let account = try await fixture.vault.completeAuthorization(
            AuthorizationCallback(parsing: honest.absoluteString))
        XCTAssertEqual(account.accountsServer, eu.baseURL.absoluteString)

        // A row whose stored server was altered is refused too, before its refresh token goes anywhere.
        _ = try await fixture.sql(
            "UPDATE oauth_tokens SET accounts_server = '\(attacker.baseURL.absoluteString)', "
                + "token_expiry = now() - interval '1 minute'")
        await assertVaultError(.accountsServerRefused) {
            try await fixture.vault.accessToken(client: "acme", provider: "zoho_crm")
        }
        await assertVaultError(.accountsServerRefused) {
            try await fixture.vault.delete(client: "acme", provider: "zoho_crm", revoke: true)
        }
        XCTAssertTrue(attacker.receivedRequests.isEmpty)
    }

    func testAStateIsSingleUseAcrossInstances() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let other = try fixture.reopen()
        defer { Task { await other.shutdown() } }
        let request = try await fixture.vault.beginAuthorization(
            client: "acme", provider: "zoho_crm", redirectURI: redirect)
        let callback = try AuthorizationCallback(parsing: us.approve(request.url).absoluteString)
        let account = try await other.completeAuthorization(callback)  // another instance completes it
        XCTAssertEqual(account.client, "acme")
        let error = await assertVaultError(.authorizationStateReplayed) {
            try await fixture.vault.completeAuthorization(callback)
        }
        XCTAssertEqual(us.receivedRequests.filter { $0.form["grant_type"] == "authorization_code" }.count, 1)
        XCTAssertFalse(error?.message.contains("Self Client") ?? true)
    }

    func testUnknownAlteredExpiredAndMismatchedStatesEachHaveTheirOwnCode() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let vault = fixture.vault
        let request = try await vault.beginAuthorization(client: "acme", provider: "zoho_crm", redirectURI: redirect)
        let callback = try us.approve(request.url).absoluteString
        let state = request.state.reveal()

        await assertVaultError(.authorizationStateUnknown) {
            try await vault.completeAuthorization(AuthorizationCallback(code: Secret("c"), state: nil))
        }
        await assertVaultError(.authorizationStateUnknown) {
            try await vault.completeAuthorization(AuthorizationCallback(code: Secret("c"), state: Secret("short")))
        }
        // Same selector, another validator: found, then refused in constant time.
        var altered = Array(state)
        altered[60] = altered[60] == "A" ? "B" : "A"
        let alteredError = await assertVaultError(.authorizationStateUnknown) {
            try await vault.completeAuthorization(
                AuthorizationCallback(parsing: callback.replacingOccurrences(of: state, with: String(altered))))
        }
        XCTAssertFalse(alteredError?.message.contains(state) ?? true)
        await assertVaultError(.authorizationStateMismatch) {
            try await vault.completeAuthorization(AuthorizationCallback(parsing: callback), client: "someone-else")
        }
        await assertVaultError(.authorizationStateMismatch) {
            try await vault.completeAuthorization(AuthorizationCallback(parsing: callback), provider: "zoho_calendar")
        }
        await assertVaultError(.authorizationStateMismatch) {
            try await vault.completeAuthorization(
                AuthorizationCallback(
                    parsing: callback.replacingOccurrences(of: "app.example/oauth", with: "evil.example/oauth")))
        }
        // None of those used it up.
        _ = try await vault.completeAuthorization(AuthorizationCallback(parsing: callback), client: "acme")

        let short = try await vault.beginAuthorization(
            client: "acme", provider: "zoho_crm", redirectURI: redirect, lifetime: 1)
        let late = try us.approve(short.url).absoluteString
        try await Task.sleep(nanoseconds: 1_300_000_000)
        await assertVaultError(.authorizationStateExpired) {
            try await vault.completeAuthorization(AuthorizationCallback(parsing: late))
        }
    }

    func testADeclinedConsentAndARefusedCodeAreTheirOwnErrors() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let vault = fixture.vault
        us.denyNextAuthorization()
        let declined = try await vault.beginAuthorization(client: "acme", provider: "zoho_crm", redirectURI: redirect)
        let denial = try us.approve(declined.url).absoluteString
        XCTAssertTrue(denial.contains("error=access_denied"))
        let error = await assertVaultError(.authorizationDenied) {
            try await vault.completeAuthorization(AuthorizationCallback(parsing: denial))
        }
        XCTAssertTrue(error?.message.contains("declined") ?? false, "\(String(describing: error))")
        await assertVaultError(.authorizationStateReplayed) {
            try await vault.completeAuthorization(AuthorizationCallback(parsing: denial))
        }

        let request = try await vault.beginAuthorization(client: "acme", provider: "zoho_crm", redirectURI: redirect)
        var parts = try XCTUnwrap(URLComponents(url: try us.approve(request.url), resolvingAgainstBaseURL: false))
        parts.queryItems = parts.queryItems!.map {
            $0.name == "code" ? URLQueryItem(name: "code", value: "1000.not-a-code") : $0
        }
        await assertVaultError(.authorizationCodeRefused) {
            try await vault.completeAuthorization(AuthorizationCallback(parsing: parts.url!.absoluteString))
        }
        await assertVaultError(.notFound) { try await vault.fetch(client: "acme", provider: "zoho_crm") }
    }

    /// The fake's authorization endpoint enforces PKCE and the redirect URI: a code redeemed with another verifier
    /// or redirect URI is refused, so a vault that got either wrong would fail these tests.
    func testTheFakeEndpointEnforcesPKCEAndTheRedirectURI() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let request = try await fixture.vault.beginAuthorization(
            client: "acme", provider: "zoho_crm", redirectURI: redirect)
        let callback = try us.approve(request.url)
        let code = try XCTUnwrap(
            URLComponents(url: callback, resolvingAgainstBaseURL: false)?.queryItems?.first {
                $0.name == "code"
            }?.value)
        // Redeemed directly, without the vault's verifier: refused, and the code is used up.
        let body =
            "grant_type=authorization_code&code=\(code)&redirect_uri=\(redirect)"
            + "&code_verifier=wrong-verifier-0000000000000000000000000000000"
            + "&client_id=\(us.clientID)&client_secret=\(us.clientSecret)"
        let answer = try await URLSessionHTTPTransport().send(
            TokenEndpointRequest(url: us.tokenURL, body: Array(body.utf8), timeout: 5))
        XCTAssertEqual(answer.status, 400)
        await assertVaultError(.authorizationCodeRefused) {
            try await fixture.vault.completeAuthorization(AuthorizationCallback(parsing: callback.absoluteString))
        }
    }

    func testRevocationFailuresKeepTheRowAndAnInvalidTokenCountsAsRevoked() async throws {
        var policy = RefreshPolicy.fastForTests
        policy.attempts = 2
        let fixture = try await makeFixture(providers: [provider()], refreshPolicy: policy)
        let vault = fixture.vault
        _ = try await connect(vault, client: "acme", at: eu)

        eu.enqueue(.status(503), .status(502))
        let error = await assertVaultError(.revocationFailed) {
            try await vault.delete(client: "acme", provider: "zoho_crm", revoke: true)
        }
        XCTAssertTrue(error?.message.contains("were kept") ?? false, "\(String(describing: error))")
        _ = try await vault.fetch(client: "acme", provider: "zoho_crm")

        eu.stop()  // unreachable
        await assertVaultError(.revocationFailed) {
            try await vault.delete(client: "acme", provider: "zoho_crm", revoke: true)
        }
        _ = try await vault.fetch(client: "acme", provider: "zoho_crm")

        // Already unknown to the provider (Zoho answers HTTP 400): counts as revoked.
        try await vault.store(sampleTokens(refresh: "1000.never-issued"), client: "old", provider: "zoho_crm")
        let deleted = try await vault.delete(client: "old", provider: "zoho_crm", revoke: true)
        XCTAssertTrue(deleted)
        XCTAssertEqual(us.revocationCount, 0)
        let again = try await vault.delete(client: "old", provider: "zoho_crm", revoke: true)
        XCTAssertFalse(again)
        let unconfigured = try await vault.delete(client: "old", provider: "not_configured", revoke: true)
        XCTAssertFalse(unconfigured, "nothing stored: nothing to revoke, whatever the provider")
        try await vault.store(sampleTokens(), client: "old", provider: "not_configured")
        await assertVaultError(.unknownProvider) {
            try await vault.delete(client: "old", provider: "not_configured", revoke: true)
        }
    }

    /// A revocation that races a refresh storing a rotated refresh token revokes that one too: the row is deleted
    /// only at the version whose token was revoked.
    func testARefreshTokenStoredDuringTheRevocationIsRevokedToo() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let vault = fixture.vault
        us.addRefreshToken("rt-first")
        us.addRefreshToken("rt-second")
        try await vault.store(sampleTokens(refresh: "rt-first"), client: "acme", provider: "zoho_crm")
        us.enqueue(.delay(0.5))
        let deletion = Task { try await vault.delete(client: "acme", provider: "zoho_crm", revoke: true) }
        try await Task.sleep(nanoseconds: 200_000_000)
        try await vault.store(sampleTokens(refresh: "rt-second"), client: "acme", provider: "zoho_crm")
        let deleted = try await deletion.value
        XCTAssertTrue(deleted)
        XCTAssertEqual(us.revocationCount, 2)
        XCTAssertFalse(us.isValidRefreshToken("rt-first"))
        XCTAssertFalse(us.isValidRefreshToken("rt-second"))
        await assertVaultError(.notFound) { try await vault.fetch(client: "acme", provider: "zoho_crm") }
    }

    /// Nothing secret reaches the logs (messages and metadata, at trace level) or the errors of a whole
    /// connect, replay, refresh and revoke.
    func testNoCodeStateVerifierOrTokenIsLogged() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let logs = LogLines()
        let vault = try Vault(
            configuration: fixture.vault.configuration, logger: logs.logger(label: "test"))
        defer { Task { await vault.shutdown() } }
        let request = try await vault.beginAuthorization(client: "acme", provider: "zoho_crm", redirectURI: redirect)
        let callback = try eu.approve(request.url).absoluteString
        _ = try await vault.completeAuthorization(AuthorizationCallback(parsing: callback))
        let replay = await assertVaultError(.authorizationStateReplayed) {
            try await vault.completeAuthorization(AuthorizationCallback(parsing: callback))
        }
        _ = try await fixture.sql("UPDATE oauth_tokens SET token_expiry = now() - interval '1 minute'")
        let token = try await vault.accessToken(client: "acme", provider: "zoho_crm")
        try await vault.delete(client: "acme", provider: "zoho_crm", revoke: true)

        var secrets = [request.state.reveal(), token.value.reveal(), us.clientSecret]
        for sent in eu.receivedRequests {
            for name in ["code", "code_verifier", "refresh_token", "token"] {
                if let value = sent.form[name] { secrets.append(value) }
            }
        }
        XCTAssertGreaterThan(secrets.count, 5)
        XCTAssertFalse(logs.all.isEmpty)
        for line in logs.all.map(\.description) + [replay?.message ?? ""] {
            for secret in secrets {
                XCTAssertFalse(line.contains(secret), "a secret in: \(line)")
            }
        }
    }

    /// "Prints without the state", however it is printed: `dump` (and anything that reflects) included.
    func testAnAuthorizationRequestDumpsWithoutItsState() async throws {
        let fixture = try await makeFixture(providers: [provider()])
        let request = try await fixture.vault.beginAuthorization(
            client: "acme", provider: "zoho_crm", redirectURI: redirect)
        var dumped = ""
        dump(request, to: &dumped)
        XCTAssertFalse(dumped.contains(request.state.reveal()), dumped)
    }

    func testExchangeTakesTheDataCentreAndRefusesAnUntrustedServer() async throws {
        eu.addAuthorizationCode("grant-eu")
        let fixture = try await makeFixture(providers: [provider()])
        let vault = fixture.vault
        try await vault.exchange(
            code: Secret("grant-eu"), client: "acme", provider: "zoho_crm", accountsServer: nil, location: "eu")
        let rows = try await fixture.sql("SELECT accounts_server FROM oauth_tokens")
        XCTAssertEqual(rows, [[eu.baseURL.absoluteString]])
        await assertVaultError(.accountsServerRefused) {
            try await vault.exchange(
                code: Secret("x"), client: "b", provider: "zoho_crm", accountsServer: "https://evil.example",
                location: nil)
        }
        // Exchanged at the default data centre: the account is pinned there, whatever ZOHO_DATA_CENTER says later.
        us.addAuthorizationCode("grant-us")
        try await vault.exchange(code: Secret("grant-us"), client: "acme", provider: "zoho_crm")
        let pinned = try await fixture.sql("SELECT accounts_server FROM oauth_tokens")
        XCTAssertEqual(pinned, [[us.baseURL.absoluteString]])
        eu.addAuthorizationCode("grant-eu-2")
        try await vault.exchange(
            code: Secret("grant-eu-2"), client: "acme", provider: "zoho_crm", accountsServer: nil, location: "eu")
        // Storing again without a server keeps the row's.
        try await vault.store(sampleTokens(), client: "acme", provider: "zoho_crm")
        let kept = try await fixture.sql("SELECT accounts_server FROM oauth_tokens")
        XCTAssertEqual(kept, [[eu.baseURL.absoluteString]])
    }
}
