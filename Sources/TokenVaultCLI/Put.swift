import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store tokens: reads a provider's token response (JSON) on stdin and stores it sealed.",
        discussion: """
            The JSON has the shape a token endpoint returns: access_token, refresh_token (required), expires_in \
            (seconds; expires_in_sec wins when present), scope, api_domain, … Other keys go into the row's \
            metadata, except keys that look like credentials, which are dropped.

            Example:
              token-vault put --client acme --provider zoho_crm < response.json
            """)

    @OptionGroup var row: RowOptions

    func run() async throws {
        let input: [UInt8]
        do {
            input = try CLI.readStandardInput()
        } catch {
            throw CLI.fail(error)
        }
        guard input.contains(where: { ![0x20, 0x0a, 0x0d, 0x09].contains($0) }) else {
            throw CLI.fail(
                VaultError(.invalidInput, "no token response on stdin; pipe in the JSON the token endpoint returned."))
        }
        let tokens: TokenSet
        do {
            tokens = try TokenResponse.parse(input)
        } catch {
            throw CLI.fail(error)
        }
        let (version, configured) = try await CLI.withVault { vault in
            (
                try await vault.store(tokens, client: row.client, provider: row.provider),
                Set(vault.configuration.providers.keys).union(OAuthProvider.zohoProducts)
            )
        }
        CLI.noteDroppedFields(TokenResponse.droppedFields(in: input))
        print(
            "stored tokens for client '\(CLI.printable(row.client))', provider '\(CLI.printable(row.provider))' (version \(version))"
        )
        if !configured.contains(row.provider) {
            // Not an error: a service that registers this provider refreshes its tokens. But it may be a typo.
            if let near = OAuthProvider.zohoProducts.first(where: { Self.distance($0, row.provider.lowercased()) <= 2 })
            {
                FileHandle.standardError.write(Data("token-vault: note: did you mean '\(near)'?\n".utf8))
            }
            FileHandle.standardError.write(
                Data(
                    ("token-vault: note: this command line refreshes only \(configured.sorted().joined(separator: ", ")) "
                        + "(Zoho's from ZOHO_*, others from TOKEN_VAULT_PROVIDERS_FILE); "
                        + "`token-vault token` serves tokens of '\(CLI.printable(row.provider))' until they expire. A "
                        + "service that registers '\(CLI.printable(row.provider))' refreshes them. If it is a typo, delete the row "
                        + "(`token-vault delete`).\n").utf8))
        }
    }

    /// Edit distance (insertions, deletions, substitutions) between two short names.
    static func distance(_ a: String, _ b: String) -> Int {
        let b = Array(b)
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1]
            for (j, y) in b.enumerated() {
                current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
            }
            previous = current
        }
        return previous[b.count]
    }
}
