import Foundation
import Logging
import XCTest

@testable import TokenVault

/// How a revocation's answers are classified (RFC 7009, and Zoho's HTTP 400 for an unknown token), over a scripted
/// transport.
final class RevocationClassificationTests: XCTestCase {
    typealias Transport = TokenEndpointClassificationTests.ScriptedTransport

    func revoke(
        _ answers: [Transport.Answer], provider: OAuthProvider? = nil
    ) async -> (TokenEndpointClient.RevocationOutcome, Transport) {
        let transport = Transport(answers)
        let client = TokenEndpointClient(
            transport: transport,
            policy: RefreshPolicy(requestTimeout: 2, attempts: 3, initialBackoff: 0.001, maximumBackoff: 0.002),
            logging: ContextLogger(Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        let zoho = OAuthProvider.zoho("zoho_crm", clientID: "1000.app", clientSecret: Secret("app-secret"))
        return (await client.revoke(provider: provider ?? zoho, token: Secret("1000.rt/+=")), transport)
    }

    func code(_ outcome: TokenEndpointClient.RevocationOutcome) -> VaultError.Code? {
        if case .failed(let error) = outcome { return error.code }
        return nil
    }

    func testSuccessAndAlreadyInvalidTokensCountAsRevoked() async {
        var (outcome, transport) = await revoke([.response(200, #"{"status":"success"}"#)])
        XCTAssertEqual(outcome, .revoked)
        let request = transport.requests[0]
        XCTAssertEqual(request.url.absoluteString, "https://accounts.zoho.com/oauth/v2/token/revoke")
        let body = String(decoding: request.body, as: UTF8.self)
        XCTAssertTrue(body.hasPrefix("token=1000.rt%2F%2B%3D&token_type_hint=refresh_token&client_id=1000.app"), body)
        (outcome, _) = await revoke([.response(400, "")])
        XCTAssertEqual(outcome, .alreadyInvalid, "Zoho: HTTP 400 for a token it does not know")
        (outcome, _) = await revoke([.response(400, "<html><body>Bad Request</body></html>")])
        XCTAssertNotEqual(outcome, .alreadyInvalid, "a proxy's HTML 400 says nothing about the token")
        (outcome, _) = await revoke([.response(400, #"{"status":"failure"}"#)])
        XCTAssertEqual(outcome, .alreadyInvalid, "JSON without an error")
        (outcome, _) = await revoke([.response(400, #"{"error":"invalid_token"}"#)])
        XCTAssertEqual(outcome, .alreadyInvalid)
        (outcome, _) = await revoke([.response(200, #"{"error":"invalid_code"}"#)])
        XCTAssertEqual(outcome, .alreadyInvalid)
    }

    func testFailuresSayTheTokenMayBeLive() async {
        var (outcome, transport) = await revoke([.response(503, ""), .failure(.timedOut), .response(502, "")])
        XCTAssertEqual(code(outcome), .revocationFailed)
        XCTAssertEqual(transport.requests.count, 3, "transient failures are retried")
        (outcome, transport) = await revoke([.failure(.cannotConnectToHost), .response(200, "{}")])
        XCTAssertEqual(outcome, .revoked)
        for answer: Transport.Answer in [
            .response(400, #"{"error":"invalid_client"}"#), .response(401, #"{"error":"invalid_client"}"#),
            .response(400, #"{"error":"unsupported_token_type"}"#), .response(200, #"{"error":"invalid_client"}"#),
            .response(400, #"{"error":"invalid_request","error_description":"URL query parameters are not allowed"}"#),
            .response(307, ""), .response(404, ""),
        ] {
            (outcome, transport) = await revoke([answer])
            XCTAssertEqual(code(outcome), .revocationFailed, "\(answer)")
            XCTAssertEqual(transport.requests.count, 1, "final: \(answer)")
        }
    }

    /// With ``OAuthProvider/revocationTokenInQuery`` the token also goes in the URL, which then prints redacted.
    func testTheTokenInTheQueryWhenAsked() async throws {
        var zoho = OAuthProvider.zoho("zoho_crm", clientID: "1000.app", clientSecret: Secret("app-secret"))
        zoho.revocationTokenInQuery = true
        let (outcome, transport) = await revoke([.response(200, "{}")], provider: zoho)
        XCTAssertEqual(outcome, .revoked)
        let request = try XCTUnwrap(transport.requests.first)
        XCTAssertEqual(
            request.url.absoluteString, "https://accounts.zoho.com/oauth/v2/token/revoke?token=1000.rt%2F%2B%3D")
        XCTAssertFalse("\(request)".contains("1000.rt"), "the URL's query prints redacted")
        XCTAssertFalse(String(reflecting: request).contains("1000.rt"))
    }

    /// RFC 7009 providers get the token in the body only, with HTTP Basic when configured; no URL: no request.
    func testAnRFC7009ProviderGetsTheTokenInTheBodyOnly() async throws {
        var google = OAuthProvider(
            name: "google", tokenURL: URL(string: "https://oauth2.googleapis.com/token")!, clientID: "id",
            clientSecret: Secret("s"), clientAuthentication: .httpBasic)
        var (outcome, transport) = await revoke([], provider: google)
        XCTAssertEqual(code(outcome), .providerConfiguration)
        XCTAssertTrue(transport.requests.isEmpty)
        google.revocationURL = URL(string: "https://oauth2.googleapis.com/revoke")
        (outcome, transport) = await revoke([.response(200, "")], provider: google)
        XCTAssertEqual(outcome, .revoked)
        let request = try XCTUnwrap(transport.requests.first)
        XCTAssertNil(request.url.query)
        XCTAssertTrue(request.headers.contains { $0.name == "Authorization" && $0.value.hasPrefix("Basic ") })
        XCTAssertFalse(String(decoding: request.body, as: UTF8.self).contains("client_secret"))
    }
}
