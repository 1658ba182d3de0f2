import ArgumentParser
import Foundation
import TokenVault

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List stored rows without secrets: client, provider, key id, expiry, last update.",
        discussion: "Examples:\n  token-vault list\n  token-vault list --json | jq '.[].client_id'")

    @Flag(help: "Print a JSON array.")
    var json = false

    struct Row: Encodable {
        let clientId: String
        let provider: String
        let keyId: String
        let expiresAt: Date?
        let updatedAt: Date
        let hasAccessToken: Bool
        let scopes: String?
        let version: Int64

        enum CodingKeys: String, CodingKey {
            case clientId = "client_id"
            case provider
            case keyId = "key_id"
            case expiresAt = "expires_at"
            case updatedAt = "updated_at"
            case hasAccessToken = "has_access_token"
            case scopes
            case version
        }
    }

    func run() async throws {
        let summaries = try await Runner.withVault(needsKeys: false) { try await $0.list() }
        if json {
            try Runner.printJSON(
                summaries.map {
                    Row(
                        clientId: $0.clientID, provider: $0.provider, keyId: $0.keyID.rawValue,
                        expiresAt: $0.expiresAt, updatedAt: $0.updatedAt, hasAccessToken: $0.hasAccessToken,
                        scopes: $0.scopes, version: $0.version)
                })
            return
        }
        let header = ["CLIENT", "PROVIDER", "KEY ID", "EXPIRES", "UPDATED"]
        let rows = summaries.map {
            [$0.clientID, $0.provider, $0.keyID.rawValue, Runner.iso8601($0.expiresAt), Runner.iso8601($0.updatedAt)]
        }
        printTable(header: header, rows: rows)
        print(Runner.rows(summaries.count))
    }
}

func printTable(header: [String], rows: [[String]]) {
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for row in rows { print(line(row)) }
}
