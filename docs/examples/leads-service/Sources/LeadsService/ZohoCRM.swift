import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import TokenVault

/// Calls Zoho CRM's API for one account with an access token from the vault.
public struct ZohoCRM: Sendable {
    /// What an API call ended with.
    public enum Answer: Sendable {
        /// The API's JSON body.
        case ok(ByteBuffer)
        /// HTTP 401: the API no longer accepts the access token (revoked, a password change).
        case unauthorized
        /// Any other status.
        case failed(status: Int)
    }

    /// The API hosts of Zoho's data centres: an account's `api_domain` must be one of them, so that a token is
    /// never sent to a host that a stored value or a provider answer could name.
    public static let apiHosts: Set<String> = [
        "www.zohoapis.com", "www.zohoapis.eu", "www.zohoapis.in", "www.zohoapis.com.au", "www.zohoapis.jp",
        "www.zohoapis.ca", "www.zohoapis.sa", "www.zohoapis.uk", "www.zohoapis.com.cn",
    ]

    let http: HTTPClient
    /// Used instead of each account's `api_domain` when set: a local fake in tests, a proxy in some deployments.
    let apiBaseOverride: String?
    /// The most bytes of an API answer this service reads.
    static let maximumAnswerBytes = 4 << 20

    /// - Parameters:
    ///   - http: the HTTP client (`HTTPClient.shared` in the service).
    ///   - apiBaseOverride: a base URL for every account instead of its `api_domain`.
    public init(http: HTTPClient = .shared, apiBaseOverride: String? = nil) {
        self.http = http
        self.apiBaseOverride = apiBaseOverride
    }

    /// The account's API base URL: the override, or its `api_domain` when it is one of Zoho's API hosts.
    func apiBase(for token: AccessToken) throws(LeadsError) -> String {
        if let apiBaseOverride { return apiBaseOverride }
        guard let domain = token.apiDomain, let url = URL(string: domain), url.scheme == "https",
            let host = url.host, Self.apiHosts.contains(host)
        else {
            throw LeadsError(.badGateway, "the account's Zoho API domain is missing or not one of Zoho's API hosts.")
        }
        return "https://\(host)"
    }

    /// `GET /crm/v8/Leads` for the account of `token`: up to `limit` leads.
    public func leads(token: AccessToken, limit: Int) async throws -> Answer {
        var request = HTTPClientRequest(
            url: "\(try apiBase(for: token))/crm/v8/Leads?fields=Last_Name,Email,Company&per_page=\(limit)")
        request.headers.add(name: "Authorization", value: "Zoho-oauthtoken \(token.value.reveal())")
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await http.execute(request, timeout: .seconds(15))
        switch response.status.code {
        case 200: return .ok(try await response.body.collect(upTo: Self.maximumAnswerBytes))
        case 204: return .ok(ByteBuffer(string: #"{"data":[]}"#))  // Zoho: no records
        case 401: return .unauthorized
        default: return .failed(status: Int(response.status.code))
        }
    }
}
