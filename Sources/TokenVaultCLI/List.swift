import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List stored rows without secrets: client, provider, key id, expiry, refresh state.",
        discussion: """
            --needs-reauth lists only the rows whose refresh token the provider refused (their users must \
            authorize again) and then exits 1 when it listed any, 0 when none, so that cron can alert on it.

            Examples:
              token-vault list
              token-vault list --json | jq '.[].client_id'
              token-vault list --needs-reauth || alert "accounts must reconnect"
            """)

    @Flag(help: "Print a JSON array.")
    var json = false

    @Flag(
        name: .customLong("needs-reauth"),
        help: "Only rows that need re-authorization; exit 1 when there are any.")
    var needsReauth = false

    struct Row: Encodable {
        let clientId: String
        let provider: String
        let keyId: String
        let expiresAt: Date?
        let updatedAt: Date
        let hasAccessToken: Bool
        let scopes: String?
        let version: Int64
        let needsReauthorization: Bool
        let lastRefreshError: String?
        let lastRefreshedAt: Date?
        let lastRefreshFailedAt: Date?

        enum CodingKeys: String, CodingKey {
            case clientId = "client_id"
            case provider
            case keyId = "key_id"
            case expiresAt = "expires_at"
            case updatedAt = "updated_at"
            case hasAccessToken = "has_access_token"
            case scopes
            case version
            case needsReauthorization = "needs_reauthorization"
            case lastRefreshError = "last_refresh_error"
            case lastRefreshedAt = "last_refreshed_at"
            case lastRefreshFailedAt = "last_refresh_failed_at"
        }
    }

    func run() async throws {
        let encoder = CLI.jsonEncoder()  // as printJSON's, so that the pages join into the same array
        var count = 0
        var table = TableWriter(header: [
            "CLIENT", "PROVIDER", "KEY ID", "EXPIRES", "UPDATED", "REAUTH", "REFRESHED", "FAILED", "LAST ERROR",
        ])
        var encodingError: (any Error)?
        // A page at a time, so that memory stays flat however large the table; the output is the same as the
        // whole list's (a pretty-printed JSON array, or a table whose columns fit the first page).
        try await CLI.withVault(needsKeys: false) { vault in
            try await vault.list(filter: needsReauth ? .needsReauthorization : .all, pageSize: 1000) { page in
                guard encodingError == nil else { return }
                if json {
                    // The page as a JSON array, without its brackets: its elements are indented as in the whole.
                    do {
                        let array = String(decoding: try encoder.encode(page.map(Row.init)), as: UTF8.self)
                        let elements = array.dropFirst(2).dropLast(2)  // "[\n" and "\n]"
                        print(count == 0 ? "[\n" + elements : ",\n" + elements, terminator: "")
                        count += page.count
                    } catch {
                        encodingError = error
                    }
                } else {
                    table.write(
                        page.map {
                            [
                                CLI.printable($0.clientID), CLI.printable($0.provider), $0.keyID.rawValue,
                                CLI.iso8601($0.expiresAt), CLI.iso8601($0.updatedAt),
                                $0.needsReauthorization ? "yes" : "no", CLI.iso8601($0.lastRefreshedAt),
                                CLI.iso8601($0.lastRefreshFailedAt), $0.lastRefreshError.map(CLI.printable) ?? "-",
                            ]
                        })
                    count += page.count
                }
            }
        }
        if let encodingError { throw CLI.fail(encodingError) }
        if json {
            print(count == 0 ? "[\n\n]" : "\n]")
        } else {
            table.write([])  // the header, when there were no rows
            print(CLI.rows(count))
        }
        // Only once everything is printed: the rows are the alert's content.
        if needsReauth && count > 0 { throw ExitCode(1) }
    }
}

extension List.Row {
    init(_ summary: TokenSummary) {
        self.init(
            clientId: summary.clientID, provider: summary.provider, keyId: summary.keyID.rawValue,
            expiresAt: summary.expiresAt, updatedAt: summary.updatedAt, hasAccessToken: summary.hasAccessToken,
            scopes: summary.scopes, version: summary.version, needsReauthorization: summary.needsReauthorization,
            lastRefreshError: summary.lastRefreshError, lastRefreshedAt: summary.lastRefreshedAt,
            lastRefreshFailedAt: summary.lastRefreshFailedAt)
    }
}

/// A table printed as its rows arrive: columns as wide as the header and the first rows written; a longer cell
/// later widens its own line, never cut.
struct TableWriter {
    private let header: [String]
    private var widths: [Int]?

    init(header: [String]) {
        self.header = header
    }

    mutating func write(_ rows: [[String]]) {
        if widths == nil {
            var widths = header.map(\.count)
            for row in rows {
                for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
            }
            self.widths = widths
            print(line(header, widths))
        }
        for row in rows { print(line(row, widths!)) }
    }

    private func line(_ cells: [String], _ widths: [Int]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell + String(repeating: " ", count: max(0, widths[index] - cell.count))
        }.joined(separator: "  ")
    }
}
