import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import TokenVault
import TokenVaultServiceLifecycle

/// The service's routes: an account's leads, health, and (with the vault's authorization flow) connecting.
public enum LeadsService {
    /// The provider name the accounts' Zoho CRM tokens are stored under.
    public static let provider = "zoho_crm"

    /// The router:
    /// - `GET /accounts/{account}/leads?limit=N`: the account's leads, with an access token from the vault; when
    ///   the API answers 401, the vault is told which token it rejected and the call is made once more.
    /// - `GET /accounts/{account}/connect`: starts connecting the account's Zoho CRM: a redirect to Zoho's consent
    ///   page, with a single-use state and PKCE kept by the vault (any instance of the service completes it).
    /// - `GET /oauth/callback`: where Zoho sends the user back; the vault checks the state and the account's data
    ///   centre, exchanges the code there and stores the tokens.
    /// - `DELETE /accounts/{account}/connection`: disconnects: revokes the refresh token at Zoho, then deletes it.
    /// - `GET /health`: 200 when the vault can reach its database and its schema is current, 503 otherwise.
    ///
    /// Every request's log lines, the vault's included, carry Hummingbird's request id: the request's logger is
    /// bound as swift-log's task-local logger around each request.
    public static func router(
        vault: Vault, crm: ZohoCRM, redirectURI: String = "http://127.0.0.1:8080/oauth/callback"
    ) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestLoggerMiddleware())
        router.get("health") { _, _ -> Response in
            do {
                try await vault.ping()
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok")))
            } catch let error as VaultError {
                throw LeadsError(.serviceUnavailable, "not ready: \(error.code).")
            }
        }
        router.get("accounts/:account/leads") { request, context -> Response in
            let account = try context.parameters.require("account")
            let limit = request.uri.queryParameters.get("limit", as: Int.self) ?? 20
            guard (1...200).contains(limit) else { throw LeadsError(.badRequest, "limit must be 1 to 200.") }
            let body = try await leads(account: account, limit: limit, vault: vault, crm: crm)
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
        }
        router.get("accounts/:account/connect") { _, context -> Response in
            let account = try context.parameters.require("account")
            let request = try await vaultCall(account) { () async throws(VaultError) in
                try await vault.beginAuthorization(
                    client: account, provider: provider, redirectURI: redirectURI, scopes: scopes)
            }
            // The URL carries the state: not logged, not cached. The state also goes into a cookie that only the
            // callback receives, so that a callback is completed only in the browser that started the connection
            // (no one can make a victim's browser complete an authorization the attacker began).
            let cookie =
                "\(connectCookie)=\(request.state.reveal()); Path=/oauth/callback; Max-Age=600; HttpOnly; Secure; "
                + "SameSite=Lax"
            return Response(
                status: .found,
                headers: [.location: request.url.absoluteString, .cacheControl: "no-store", .setCookie: cookie])
        }
        router.get("oauth/callback") { request, _ -> Response in
            let account: ConnectedAccount
            guard let expected = cookie(connectCookie, in: request.headers[values: .cookie]),
                let state = request.uri.queryParameters.get("state"), equalInConstantTime(expected, state)
            else {
                throw LeadsError(
                    .badRequest,
                    "this connection was not started in this browser (or took longer than 10 minutes): start it "
                        + "again from the connect page.")
            }
            do {
                let callback = try AuthorizationCallback(parsing: request.uri.query ?? "")
                account = try await vault.completeAuthorization(callback, provider: provider)
            } catch let error as VaultError {
                throw LeadsError(callback: error)
            }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: "Zoho CRM is connected for account '\(account.client)'.")))
        }
        router.delete("accounts/:account/connection") { _, context -> Response in
            let account = try context.parameters.require("account")
            let deleted = try await vaultCall(account) { () async throws(VaultError) in
                try await vault.delete(client: account, provider: provider, revoke: true)
            }
            return Response(status: deleted ? .noContent : .notFound)
        }
        return router
    }

    /// The cookie that binds a connection's state to the browser that began it.
    static let connectCookie = "leads_connect_state"

    /// The value of cookie `name` in the request's `Cookie` headers.
    static func cookie(_ name: String, in headers: [String]) -> String? {
        for header in headers {
            for pair in header.split(separator: ";") {
                let parts = pair.trimmingCharacters(in: .whitespaces).split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0] == name { return String(parts[1]) }
            }
        }
        return nil
    }

    /// Whether `a` and `b` are equal, in time that depends on their length only.
    static func equalInConstantTime(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The Zoho CRM scopes the service asks for: reading leads.
    public static let scopes = ["ZohoCRM.modules.leads.READ"]

    /// The account's leads; on a 401, one more try with the token the vault hands out instead of the rejected one.
    static func leads(account: String, limit: Int, vault: Vault, crm: ZohoCRM) async throws -> ByteBuffer {
        var token = try await vaultCall(account) { () async throws(VaultError) in
            try await vault.accessToken(client: account, provider: provider)
        }
        for attempt in 1...2 {
            switch try await crm.leads(token: token, limit: limit) {
            case .ok(let body):
                return body
            case .unauthorized where attempt == 1:
                let rejected = token.value
                token = try await vaultCall(account) { () async throws(VaultError) in
                    try await vault.accessToken(client: account, provider: provider, replacing: rejected)
                }
            case .unauthorized:
                throw LeadsError(.badGateway, "Zoho CRM refused a freshly refreshed token for '\(account)'.")
            case .failed(let status):
                throw LeadsError(.badGateway, "Zoho CRM answered HTTP \(status).")
            }
        }
        throw LeadsError(.badGateway, "Zoho CRM refused the token.")
    }

    /// Runs a vault call, turning its error into the route's answer.
    static func vaultCall<T>(_ account: String, _ body: () async throws(VaultError) -> T) async throws(LeadsError) -> T
    {
        do {
            return try await body()
        } catch {
            throw LeadsError(error, account: account)
        }
    }

    /// The whole service as a swift-service-lifecycle group: the HTTP server, the background refresher (tokens
    /// renewed before requests need them) and the vault, which shuts down last so that refreshes in flight are
    /// written. Configured from the environment: the vault's variables (`DATABASE_URL`, `TOKEN_VAULT_KEY_FILE`,
    /// `ZOHO_CLIENT_ID`, …), `PORT` (default 8080), `REDIRECT_URI` (the callback URL registered with Zoho, default
    /// `http://127.0.0.1:$PORT/oauth/callback`) and `ZOHO_API_BASE_URL` (optional).
    public static func run(environment: [String: String] = ProcessInfo.processInfo.environment) async throws {
        var configured = Logger(label: "leads-service")
        configured.logLevel = environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        let logger = configured
        let vault = try Vault(configuration: .fromEnvironment(environment), logger: logger)
        try await vault.migrate()
        let port = environment["PORT"].flatMap(Int.init) ?? 8080
        let app = Application(
            router: router(
                vault: vault, crm: ZohoCRM(apiBaseOverride: environment["ZOHO_API_BASE_URL"]),
                redirectURI: environment["REDIRECT_URI"] ?? "http://127.0.0.1:\(port)/oauth/callback"),
            configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        let refresher = BackgroundRefresher(vault: vault, interval: 60) { result in
            if case .failure(let error) = result {
                logger.warning("token refresh pass failed", metadata: ["error": "\(error.code)"])
            }
        }
        let group = ServiceGroup(
            services: [VaultService(vault: vault), RefresherService(refresher), app],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// Binds the request's logger (which carries Hummingbird's `hb.request.id`) as swift-log's task-local logger, so
/// that the vault's log lines for the request carry its id.
struct RequestLoggerMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        try await withLogger(context.logger) { _ in try await next(request, context) }
    }
}
