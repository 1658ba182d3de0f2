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
        let client_id: String
        let provider: String
        let key_id: String
        let expires_at: Date?
        let updated_at: Date
        let has_access_token: Bool
        let scopes: String?
        let version: Int64
    }

    func run() async throws {
        let summaries = try await Runner.withVault { try await $0.list() }
        if json {
            try Runner.printJSON(
                summaries.map {
                    Row(
                        client_id: $0.clientID, provider: $0.provider, key_id: $0.keyID.rawValue,
                        expires_at: $0.expiresAt, updated_at: $0.updatedAt, has_access_token: $0.hasAccessToken,
                        scopes: $0.scopes, version: $0.version)
                })
            return
        }
        let header = ["CLIENT", "PROVIDER", "KEY ID", "EXPIRES", "UPDATED"]
        let rows = summaries.map {
            [$0.clientID, $0.provider, $0.keyID.rawValue, Runner.iso8601($0.expiresAt), Runner.iso8601($0.updatedAt)]
        }
        printTable(header: header, rows: rows)
        print("\(summaries.count) row\(summaries.count == 1 ? "" : "s")")
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
