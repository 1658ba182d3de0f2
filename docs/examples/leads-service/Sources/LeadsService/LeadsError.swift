import Foundation
import Hummingbird
import TokenVault

/// An error a route answers with: an HTTP status and a message fit for the caller, never a token.
public struct LeadsError: Error, HTTPResponseError {
    /// The status of the answer.
    public let status: HTTPResponse.Status
    /// What happened, for the caller.
    public let message: String
    /// Seconds after which to try again, sent as `Retry-After`.
    public var retryAfter: Int?

    init(_ status: HTTPResponse.Status, _ message: String, retryAfter: Int? = nil) {
        self.status = status
        self.message = message
        self.retryAfter = retryAfter
    }

    /// The answer for a vault error: the account must connect again (409), is rate limited (429 with Retry-After),
    /// is unknown (404), or the vault or provider cannot serve now (503).
    init(_ error: VaultError, account: String) {
        switch error.code {
        case .notFound:
            self.init(.notFound, "account '\(account)' has not connected Zoho CRM: open /accounts/\(account)/connect.")
        case .needsReauthorization:
            self.init(
                .conflict,
                "account '\(account)' must connect Zoho CRM again (its authorization was revoked): open "
                    + "/accounts/\(account)/connect.")
        case .rateLimited:
            let seconds = error.retryAfter.map { Int($0.components.seconds) } ?? 60
            self.init(
                .tooManyRequests, "too many token refreshes for this account; try again later.", retryAfter: seconds)
        case .invalidInput:
            self.init(.badRequest, "the account id must be 1 to 256 bytes of printable text.")
        case .revocationFailed:
            self.init(
                .badGateway,
                "Zoho did not confirm the revocation, so the connection of '\(account)' is kept; try again later.")
        default:
            self.init(.serviceUnavailable, "the token store cannot serve this account now (\(error.code)).")
        }
    }

    /// The answer for a failed OAuth callback: the vault's message, written for the user whose browser brought it
    /// (it quotes no code or state); 403 when the user declined, 400 for a state or code the vault refuses, 503
    /// when the provider or the database cannot answer now.
    init(callback error: VaultError) {
        switch error.code {
        case .authorizationDenied:
            self.init(.forbidden, error.message)
        case .authorizationStateUnknown, .authorizationStateExpired, .authorizationStateReplayed,
            .authorizationStateMismatch, .authorizationCodeRefused, .accountsServerRefused, .invalidInput:
            self.init(.badRequest, error.message)
        default:
            self.init(.serviceUnavailable, "Zoho CRM could not be connected now (\(error.code)); try again later.")
        }
    }

    /// The answer: a JSON body `{"error": message}` and `Retry-After` when set.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let body = try encoder.encode(["error": message])
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
