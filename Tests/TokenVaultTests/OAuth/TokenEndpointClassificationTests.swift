import Foundation
import Logging
import Synchronization
import XCTest

@testable import TokenVault

/// How the token endpoint client classifies a provider's answers, over a scripted transport: no network, no
/// database. (RefreshTests drive the same client against a real HTTP endpoint on 127.0.0.1.)
final class TokenEndpointClassificationTests: XCTestCase {
    /// Answers requests from a script, in order, and keeps what it was sent.
    final class ScriptedTransport: HTTPTransport {
        enum Answer: Sendable {
            case response(Int, String)
            case failure(URLError.Code)
        }
        private let state: Mutex<(answers: [Answer], requests: [TokenEndpointRequest])>

        init(_ answers: [Answer]) {
            state = Mutex((answers, []))
        }

        var requests: [TokenEndpointRequest] { state.withLock { $0.requests } }

        func send(_ request: TokenEndpointRequest) async throws -> TokenEndpointResponse {
            let answer = state.withLock { state -> Answer in
                state.requests.append(request)
                return state.answers.isEmpty ? .response(500, "script exhausted") : state.answers.removeFirst()
            }
            switch answer {
            case .response(let status, let body): return TokenEndpointResponse(status: status, body: Array(body.utf8))
            case .failure(let code): throw URLError(code)
            }
        }
    }

    let provider = OAuthProvider.zoho("zoho_crm", clientID: "1000.app", clientSecret: Secret("app-secret"))
    let tokens = #"{"access_token":"1000.at","expires_in":3600,"api_domain":"https://www.zohoapis.com"}"#

    func refresh(_ answers: [ScriptedTransport.Answer]) async -> (TokenEndpointClient.GrantResult, ScriptedTransport) {
        let transport = ScriptedTransport(answers)
        let client = TokenEndpointClient(
            transport: transport,
            policy: RefreshPolicy(requestTimeout: 2, attempts: 3, initialBackoff: 0.001, maximumBackoff: 0.002),
            logging: ContextLogger(Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        let result = await client.refresh(provider: provider, refreshToken: Secret("1000.rt"), maximumAttempts: 3)
        return (result, transport)
    }

    func testASuccessfulRefreshKeepsTheRefreshTokenAndSendsAForm() async throws {
        let (result, transport) = await refresh([.response(200, tokens)])
        guard case .success(let set) = result.outcome else { return XCTFail("\(result.outcome)") }
        XCTAssertEqual(set.accessToken, Secret("1000.at"))
        XCTAssertEqual(set.refreshToken, Secret("1000.rt"), "Zoho does not rotate: the old refresh token is kept")
        XCTAssertEqual(set.metadata["api_domain"], .string("https://www.zohoapis.com"))
        XCTAssertEqual(result.attempts, 1)
        let request = try XCTUnwrap(transport.requests.first)
        XCTAssertEqual(request.url.absoluteString, "https://accounts.zoho.com/oauth/v2/token")
        XCTAssertEqual(request.method, "POST")
        let body = String(decoding: request.body, as: UTF8.self)
        for field in ["grant_type=refresh_token", "refresh_token=1000.rt", "client_id=1000.app"] {
            XCTAssertTrue(body.contains(field), body)
        }
    }

    func testARefusedGrantIsFinalWhateverTheStatus() async {
        for (status, body) in [(200, #"{"error":"invalid_code"}"#), (400, #"{"error":"invalid_grant"}"#)] {
            let (result, transport) = await refresh([.response(status, body), .response(200, tokens)])
            guard case .refused(let code) = result.outcome else { return XCTFail("\(result.outcome)") }
            XCTAssertTrue(["invalid_code", "invalid_grant"].contains(code))
            XCTAssertEqual(transport.requests.count, 1, "a refused grant is never retried")
        }
    }

    func testTransientFailuresAreRetriedAndCounted() async {
        let (result, _) = await refresh([
            .response(503, "busy"), .failure(.networkConnectionLost), .response(200, tokens),
        ])
        guard case .success = result.outcome else { return XCTFail("\(result.outcome)") }
        XCTAssertEqual(result.attempts, 3, "every request that may have reached the provider counts for its cap")
    }

    func testLimitsAndAccessDeniedAreRateLimitedAfterTheLastAttempt() async {
        let (limited, transport) = await refresh([
            .response(429, ""), .response(200, "<html>Access Denied</html>"), .response(429, ""),
        ])
        guard case .failed(let error) = limited.outcome else { return XCTFail("\(limited.outcome)") }
        XCTAssertEqual(error.code, .rateLimited)
        XCTAssertEqual(transport.requests.count, 3)
    }

    func testATransportFailureKeepsItsUnderlyingError() async {
        let (result, _) = await refresh([
            .failure(.cannotConnectToHost), .failure(.cannotConnectToHost), .failure(.cannotConnectToHost),
        ])
        guard case .failed(let error) = result.outcome else { return XCTFail("\(result.outcome)") }
        XCTAssertEqual(error.code, .providerError)
        XCTAssertEqual((error.underlying as? URLError)?.code, .cannotConnectToHost)
        XCTAssertTrue(error.message.contains("accounts.zoho.com"), error.message)
    }

    func testBadCredentialsAndAnswersWithoutTokensFailAtOnce() async {
        let (credentials, first) = await refresh([.response(401, #"{"error":"invalid_client"}"#)])
        guard case .failed(let error) = credentials.outcome else { return XCTFail("\(credentials.outcome)") }
        XCTAssertEqual(error.code, .providerConfiguration)
        XCTAssertEqual(first.requests.count, 1)

        let (empty, second) = await refresh([.response(200, #"{"token_type":"Bearer"}"#)])
        guard case .failed(let emptyError) = empty.outcome else { return XCTFail("\(empty.outcome)") }
        XCTAssertEqual(emptyError.code, .providerError)
        XCTAssertTrue(emptyError.message.contains("no access_token"), emptyError.message)
        XCTAssertEqual(second.requests.count, 1)
    }

    func testACodeExchangeIsTriedOnceEvenWhenTheProviderIsBusy() async {
        let transport = ScriptedTransport([.response(503, "busy"), .response(200, tokens)])
        let client = TokenEndpointClient(
            transport: transport, policy: RefreshPolicy(initialBackoff: 0.001, maximumBackoff: 0.002),
            logging: ContextLogger(Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        let result = await client.exchange(provider: provider, code: Secret("1000.grant"))
        guard case .failed(let error) = result.outcome else { return XCTFail("\(result.outcome)") }
        XCTAssertEqual(error.code, .providerError)
        XCTAssertEqual(transport.requests.count, 1, "a code is single-use: no retry")
    }
}
