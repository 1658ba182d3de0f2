import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import TokenVault
import TokenVaultTesting
import XCTest

@testable import LeadsService

/// The example service against a real PostgreSQL (TokenVaultTesting's throwaway server), a real token endpoint
/// (`FakeTokenEndpoint`) and a fake Zoho CRM API, all on 127.0.0.1.
final class LeadsServiceTests: XCTestCase {
    var database: TestDatabase!
    var endpoint: FakeTokenEndpoint!
    var vault: Vault!
    let lines = CapturedLines()

    override func setUp() async throws {
        database = try await TestDatabase.create()
        endpoint = try FakeTokenEndpoint.start()
        var configuration = VaultConfiguration(
            databaseURL: database.url, keyring: try Keyring(current: .generate()),
            providers: [
                .zoho(
                    LeadsService.provider, clientID: endpoint.clientID, clientSecret: Secret(endpoint.clientSecret),
                    accountsURL: endpoint.baseURL)
            ])
        configuration.refreshPolicy = RefreshPolicy(requestTimeout: 2, attempts: 2, initialBackoff: 0.01)
        vault = try Vault(configuration: configuration, logger: lines.logger(label: "vault"))
        try await vault.migrate()
    }

    override func tearDown() async throws {
        await vault.shutdown()
        endpoint.stop()
        await database.drop()
    }

    /// Runs `test` against the service's router, with the fake CRM API live on 127.0.0.1.
    func withService(
        crm: FakeCRM = FakeCRM(), _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void
    ) async throws {
        let vault = self.vault!
        let logger = lines.logger(label: "service")
        try await crm.application().test(.live) { crmClient in
            let base = "http://127.0.0.1:\(crmClient.port!)"
            let app = Application(
                router: LeadsService.router(
                    vault: vault, crm: ZohoCRM(apiBaseOverride: base), redirectURI: LeadsServiceTests.redirectURI),
                logger: logger)
            try await app.test(.router, test)
        }
    }

    static let redirectURI = "https://leads.example/oauth/callback"

    /// A customer connects: /connect redirects to Zoho's consent page (here the local endpoint's), the user
    /// consents, Zoho redirects back to /oauth/callback, and the account's leads are served; then it disconnects,
    /// which revokes the refresh token at Zoho.
    func testAnAccountConnectsThenItsLeadsAreServedThenItDisconnects() async throws {
        let endpoint = self.endpoint!
        try await withService { client in
            let (consent, cookie) = try await client.execute(uri: "/accounts/acme/connect", method: .get) {
                response in
                XCTAssertEqual(response.status, .found)
                let cookie = try XCTUnwrap(response.headers[.setCookie]?.split(separator: ";").first.map(String.init))
                return (try XCTUnwrap(response.headers[.location].flatMap(URL.init(string:))), cookie)
            }
            XCTAssertTrue(consent.absoluteString.contains("code_challenge_method=S256"), "PKCE")
            XCTAssertTrue(consent.absoluteString.contains("access_type=offline"), "a refresh token")
            let callback = try endpoint.approve(consent)
            XCTAssertTrue(callback.absoluteString.hasPrefix(Self.redirectURI))
            let path = "/oauth/callback?" + (callback.query ?? "")
            try await client.execute(uri: path, method: .get) { response in
                XCTAssertEqual(response.status, .badRequest, "a callback in a browser that did not start it")
                XCTAssertTrue(String(buffer: response.body).contains("not started in this browser"))
            }
            try await client.execute(uri: path, method: .get, headers: [.cookie: cookie]) { response in
                XCTAssertEqual(response.status, .ok, String(buffer: response.body))
                XCTAssertTrue(String(buffer: response.body).contains("connected for account 'acme'"))
            }
            try await client.execute(uri: path, method: .get, headers: [.cookie: cookie]) { response in
                XCTAssertEqual(response.status, .badRequest, "a replayed callback is refused")
            }
            try await client.execute(uri: "/accounts/acme/leads", method: .get) { XCTAssertEqual($0.status, .ok) }
            try await client.execute(uri: "/accounts/acme/connection", method: .delete) {
                XCTAssertEqual($0.status, .noContent)
            }
            try await client.execute(uri: "/accounts/acme/leads", method: .get) {
                XCTAssertEqual($0.status, .notFound)
            }
        }
        XCTAssertEqual(endpoint.revocationCount, 1)
    }

    /// The user declines on Zoho's consent page: the callback says so, and nothing is stored.
    func testADeclinedConsentIsExplainedToTheUser() async throws {
        let endpoint = self.endpoint!
        endpoint.denyNextAuthorization()
        try await withService { client in
            let (consent, cookie) = try await client.execute(uri: "/accounts/acme/connect", method: .get) {
                (
                    try XCTUnwrap($0.headers[.location].flatMap(URL.init(string:))),
                    try XCTUnwrap($0.headers[.setCookie]?.split(separator: ";").first.map(String.init))
                )
            }
            let callback = try endpoint.approve(consent)
            try await client.execute(
                uri: "/oauth/callback?" + (callback.query ?? ""), method: .get, headers: [.cookie: cookie]
            ) { response in
                XCTAssertEqual(response.status, .forbidden, String(buffer: response.body))
            }
        }
        let stored = try await vault.list()
        XCTAssertTrue(stored.isEmpty)
    }

    func testAConnectedAccountsLeadsAreServed() async throws {
        try await vault.store(validTokens("1000.good"), client: "acme", provider: LeadsService.provider)
        let crm = FakeCRM()
        try await withService(crm: crm) { client in
            try await client.execute(uri: "/accounts/acme/leads?limit=5", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertTrue(String(buffer: response.body).contains("Lead of 1000.good"))
            }
        }
        XCTAssertEqual(crm.authorizations, ["Zoho-oauthtoken 1000.good"])
        XCTAssertEqual(endpoint.requestCount, 0)
    }

    /// Twenty requests at once for an account whose token has expired: one refresh at the provider.
    func testAnExpiredTokenIsRefreshedOnceForConcurrentRequests() async throws {
        endpoint.addRefreshToken("rt-acme")
        try await vault.store(expiredTokens(refresh: "rt-acme"), client: "acme", provider: LeadsService.provider)
        try await withService { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await client.execute(uri: "/accounts/acme/leads", method: .get).status }
                }
                for try await status in group { XCTAssertEqual(status, .ok) }
            }
        }
        XCTAssertEqual(endpoint.requestCount, 1)
    }

    /// The API refuses a token before its expiry (revoked at Zoho): the route reports it to the vault, which
    /// refreshes once however many requests saw the 401, and each request succeeds on its second try.
    func testA401FromTheAPIRefreshesOnceAndTheRequestSucceeds() async throws {
        endpoint.addRefreshToken("rt-acme")
        try await vault.store(
            validTokens("1000.revoked", refresh: "rt-acme"), client: "acme", provider: LeadsService.provider)
        let crm = FakeCRM(rejecting: ["1000.revoked"])
        try await withService(crm: crm) { client in
            try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<20 {
                    group.addTask { try await client.execute(uri: "/accounts/acme/leads", method: .get).status }
                }
                for try await status in group { XCTAssertEqual(status, .ok) }
            }
        }
        XCTAssertEqual(endpoint.requestCount, 1, "one refresh for 20 requests that saw the same 401")
    }

    func testAnAccountThatNeverConnectedIsToldHowTo() async throws {
        try await withService { client in
            try await client.execute(uri: "/accounts/nobody/leads", method: .get) { response in
                XCTAssertEqual(response.status, .notFound)
                XCTAssertTrue(String(buffer: response.body).contains("/accounts/nobody/connect"))
            }
        }
    }

    /// Zoho refuses the refresh token (the user removed the app): 409, and the account is listed as needing to
    /// reconnect.
    func testARevokedRefreshTokenAsksTheAccountToReconnect() async throws {
        endpoint.addRefreshToken("rt-acme")
        endpoint.enqueue(.errorWith200("invalid_code"))
        try await vault.store(expiredTokens(refresh: "rt-acme"), client: "acme", provider: LeadsService.provider)
        try await withService { client in
            try await client.execute(uri: "/accounts/acme/leads", method: .get) { response in
                XCTAssertEqual(response.status, .conflict)
                XCTAssertTrue(String(buffer: response.body).contains("must connect Zoho CRM again"))
            }
        }
        let reconnect = try await vault.list(filter: .needsReauthorization)
        XCTAssertEqual(reconnect.map(\.clientID), ["acme"])
    }

    /// The vault's own cap on refreshes (Zoho allows 10 per refresh token per 10 minutes) becomes 429 with
    /// Retry-After, from the error's `retryAfter`, not from its message.
    func testTheVaultsRateLimitBecomesRetryAfter() async throws {
        endpoint.addRefreshToken("rt-acme")
        try await vault.store(expiredTokens(refresh: "rt-acme"), client: "acme", provider: LeadsService.provider)
        // The first call refreshes the expired token; each report of a rejected token refreshes again: 10 in all.
        for _ in 0..<9 {
            let token = try await vault.accessToken(client: "acme", provider: LeadsService.provider)
            _ = try await vault.accessToken(client: "acme", provider: LeadsService.provider, replacing: token.value)
        }
        try await withService(crm: FakeCRM(rejectingAll: true)) { client in
            try await client.execute(uri: "/accounts/acme/leads", method: .get) { response in
                XCTAssertEqual(response.status, .tooManyRequests, String(buffer: response.body))
                let seconds = Int(response.headers[.retryAfter] ?? "")
                XCTAssertNotNil(seconds)
                XCTAssertGreaterThan(seconds ?? 0, 0)
            }
        }
    }

    /// Without an override, only Zoho's API hosts get a token: a stored `api_domain` naming another host is
    /// refused before anything is sent.
    func testATokenIsNeverSentToAnAPIDomainOutsideZohos() async throws {
        var tokens = validTokens("1000.good")
        tokens.metadata = ["api_domain": .string("https://zohoapis.attacker.example")]
        try await vault.store(tokens, client: "acme", provider: LeadsService.provider)
        let app = Application(router: LeadsService.router(vault: vault, crm: ZohoCRM()))
        try await app.test(.router) { client in
            try await client.execute(uri: "/accounts/acme/leads", method: .get) { response in
                XCTAssertEqual(response.status, .badGateway)
                XCTAssertTrue(String(buffer: response.body).contains("not one of Zoho's API hosts"))
            }
        }
    }

    func testHealthTouchesTheDatabase() async throws {
        try await withService { client in
            try await client.execute(uri: "/health", method: .get) { XCTAssertEqual($0.status, .ok) }
        }
        let empty = try await TestDatabase.create()
        let unmigrated = try Vault(
            configuration: VaultConfiguration(databaseURL: empty.url, keyring: try Keyring(current: .generate())))
        let app = Application(router: LeadsService.router(vault: unmigrated, crm: ZohoCRM()))
        try await app.test(.router) { client in
            try await client.execute(uri: "/health", method: .get) { response in
                XCTAssertEqual(response.status, .serviceUnavailable)
                XCTAssertTrue(String(buffer: response.body).contains("schemaOutdated"))
            }
        }
        await unmigrated.shutdown()
        await empty.drop()
    }

    /// The vault's log lines for a request carry Hummingbird's request id, through the middleware that binds the
    /// request's logger as the task-local one.
    func testTheVaultsLogLinesCarryTheRequestId() async throws {
        endpoint.addRefreshToken("rt-acme")
        try await vault.store(expiredTokens(refresh: "rt-acme"), client: "acme", provider: LeadsService.provider)
        try await withService { client in
            _ = try await client.execute(uri: "/accounts/acme/leads", method: .get)
        }
        let refreshed = try XCTUnwrap(lines.all.first { $0.label == "vault" && $0.message.contains("refreshed") })
        XCTAssertNotNil(refreshed.metadata["hb.request.id"], "\(refreshed)")
        XCTAssertFalse(lines.all.contains { $0.description.contains("1000.") }, "no token in any log line")
    }
}

/// Tokens valid for an hour, with Zoho's API domain.
func validTokens(_ access: String, refresh: String = "rt-unused") -> TokenSet {
    TokenSet(
        accessToken: Secret(access), refreshToken: Secret(refresh), expiresAt: Date().addingTimeInterval(3600),
        metadata: ["api_domain": .string("https://www.zohoapis.eu")])
}

/// Tokens whose access token has expired.
func expiredTokens(refresh: String) -> TokenSet {
    TokenSet(
        accessToken: Secret("1000.expired"), refreshToken: Secret(refresh), expiresAt: Date().addingTimeInterval(-60),
        metadata: ["api_domain": .string("https://www.zohoapis.eu")])
}

/// Zoho CRM's `GET /crm/v8/Leads`, answering 401 to the tokens it rejects and one lead per request otherwise.
final class FakeCRM: Sendable {
    private let rejected: Set<String>
    private let rejectingAll: Bool
    private let seen = Mutex<[String]>([])
    /// The Authorization headers received, in order.
    var authorizations: [String] { seen.withLock { $0 } }

    init(rejecting rejected: Set<String> = [], rejectingAll: Bool = false) {
        self.rejected = rejected
        self.rejectingAll = rejectingAll
    }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.get("crm/v8/Leads") { request, _ -> Response in
            let authorization = request.headers[.authorization] ?? ""
            self.seen.withLock { $0.append(authorization) }
            let token = authorization.replacingOccurrences(of: "Zoho-oauthtoken ", with: "")
            if self.rejectingAll || self.rejected.contains(token) {
                return Response(
                    status: .unauthorized,
                    body: .init(byteBuffer: ByteBuffer(string: #"{"code":"INVALID_TOKEN","status":"error"}"#)))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"data":[{"Last_Name":"Lead of \#(token)"}]}"#)))
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }
}

/// Collects log lines with their label and metadata.
final class CapturedLines: Sendable {
    struct Line: Sendable, CustomStringConvertible {
        let label: String
        let message: String
        let metadata: [String: String]
        var description: String { "[\(label)] \(message) \(metadata)" }
    }

    private let stored = Mutex<[Line]>([])
    var all: [Line] { stored.withLock { $0 } }

    func logger(label: String) -> Logger {
        var logger = Logger(label: label, factory: { label in Handler(label: label, sink: self) })
        logger.logLevel = .trace
        return logger
    }

    fileprivate func append(_ line: Line) { stored.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let label: String
        let sink: CapturedLines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var all = metadata
            if let own = event.metadata { all.merge(own) { $1 } }
            sink.append(Line(label: label, message: event.message.description, metadata: all.mapValues { "\($0)" }))
        }
    }
}
