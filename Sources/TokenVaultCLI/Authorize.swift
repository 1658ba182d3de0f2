import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct Authorize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Begin connecting an account: print the provider's authorization URL (state + PKCE).",
        discussion: """
            Stores a single-use state (10 minutes by default) bound to the client, provider and redirect URI, with \
            a PKCE verifier sealed under the current key, and prints the URL to open in a browser. After consent \
            the provider redirects to the redirect URI; pipe that whole URL (or its query string) into \
            `token-vault callback` to store the tokens. For Zoho the URL asks for offline access and consent \
            (access_type=offline, prompt=consent), and the callback's data centre is kept with the account.

            Example:
              token-vault authorize --client acme --provider zoho_crm \\
                  --redirect-uri https://app.example/oauth/callback --scope ZohoCRM.modules.ALL
            """)

    @OptionGroup var row: RowOptions

    @Option(name: .customLong("redirect-uri"), help: "Where the provider sends the user back (registered with it).")
    var redirectURI: String

    @Option(name: .customLong("scope"), help: "A scope to ask for; repeat for several.")
    var scopes: [String] = []

    @Option(help: "Seconds the state stays valid (1 to 3600).")
    var lifetime: Int = 600

    func run() async throws {
        let request = try await CLI.withVault { vault in
            try await vault.beginAuthorization(
                client: row.client, provider: row.provider, redirectURI: redirectURI, scopes: scopes,
                lifetime: TimeInterval(lifetime))
        }
        print(request.url.absoluteString)
        FileHandle.standardError.write(
            Data(
                ("token-vault: note: valid until \(CLI.iso8601(request.expiresAt)); after consent, pipe the URL the "
                    + "browser lands on into `token-vault callback`.\n").utf8))
    }
}

struct Callback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Complete an authorization: read the callback URL (or query string) on stdin, store the tokens.",
        discussion: """
            The callback holds the authorization code, a secret: it is read from stdin, never from arguments. The \
            state is checked (known, unaltered, unused, unexpired, for the same client, provider and redirect URI), \
            the account's accounts server (Zoho's accounts-server and location) against the trusted ones, and the \
            code is exchanged with the PKCE verifier.

            Example:
              pbpaste | token-vault callback
              echo 'code=…&state=…&location=eu&accounts-server=https%3A%2F%2Faccounts.zoho.eu' | token-vault callback
            """)

    @Option(help: "Refuse the callback unless it completes an authorization for this client.")
    var client: String?

    @Option(help: "Refuse the callback unless it completes an authorization for this provider.")
    var provider: String?

    func run() async throws {
        let callback: AuthorizationCallback
        do {
            let input = try CLI.readStandardInput(limit: 16_384)
            callback = try AuthorizationCallback(parsing: String(decoding: input, as: UTF8.self))
        } catch {
            throw CLI.fail(error)
        }
        let account = try await CLI.withVault { vault in
            try await vault.completeAuthorization(callback, client: client, provider: provider)
        }
        let server = account.accountsServer.map { ", accounts server \(CLI.printable($0))" } ?? ""
        let domain = account.accessToken.apiDomain.map { ", api_domain \(CLI.printable($0))" } ?? ""
        print(
            "stored tokens for client '\(CLI.printable(account.client))', provider "
                + "'\(CLI.printable(account.provider))'\(server)\(domain)")
    }
}
