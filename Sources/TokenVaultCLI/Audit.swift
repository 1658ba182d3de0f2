import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Read, verify and prune the audit trail (docs/audit.md).",
        discussion: """
            Every change to the stored tokens writes an event in the same transaction (TOKEN_VAULT_AUDIT=off \
            turns it off); each event is chained to the one before it with a MAC keyed from the vault key.

            Examples:
              token-vault audit --client acme --since 7d
              token-vault audit --json --since 2026-12-01
              token-vault audit verify
              token-vault audit prune --before 400d
            """,
        subcommands: [AuditList.self, AuditVerify.self, AuditPrune.self], defaultSubcommand: AuditList.self)

    /// `T` as a time: ISO 8601 (`2026-12-01`, `2026-12-01T12:00:00Z`), or a number of days (`30d`) or hours
    /// (`12h`) ago.
    static func parseTime(_ text: String, option: String) throws -> Date {
        if let last = text.last, "dh".contains(last), let amount = Double(text.dropLast()), amount >= 0 {
            return Date().addingTimeInterval(-amount * (last == "d" ? 86_400 : 3600))
        }
        let full = ISO8601DateFormatter()
        if let date = full.date(from: text) { return date }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        if let date = day.date(from: text) { return date }
        throw ValidationError(
            "\(option) must be an ISO 8601 time (2026-12-01 or 2026-12-01T12:00:00Z) or an age such as 30d or 12h.")
    }
}

struct AuditList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Print audit events, oldest first (the default subcommand).")

    @Option(help: "Only this client's events.")
    var client: String?

    @Option(help: "Only this provider's events.")
    var provider: String?

    @Option(help: "Only events since T: ISO 8601, or an age such as 7d or 12h.")
    var since: String?

    @Flag(help: "Print one JSON object per line.")
    var json = false

    func validate() throws {
        if let since { _ = try Audit.parseTime(since, option: "--since") }
    }

    struct Line: Encodable {
        let time: Date
        let chain: String
        let seq: Int64
        let kind: String
        let clientID: String?
        let provider: String?
        let keyID: String?
        let outcome: String
        let application: String
        let host: String
        let pid: Int32
        let actor: String?
        let details: JSONValue?
        let macKeyID: String

        enum CodingKeys: String, CodingKey {
            case time, chain, seq, kind, provider, outcome, application, host, pid, actor, details
            case clientID = "client_id"
            case keyID = "key_id"
            case macKeyID = "mac_key_id"
        }
    }

    func run() async throws {
        let filter = AuditFilter(
            client: client, provider: provider, since: try since.map { try Audit.parseTime($0, option: "--since") })
        let encoder = CLI.jsonEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try await CLI.withVault(needsKeys: false) { vault in
            var failure: (any Error)?
            try await vault.auditEvents(filter, pageSize: 500) { events in
                for event in events where failure == nil {
                    if json {
                        let line = Line(
                            time: event.time, chain: event.chain, seq: event.sequence, kind: event.kind.rawValue,
                            clientID: event.clientID, provider: event.provider, keyID: event.keyID?.rawValue,
                            outcome: event.outcome, application: event.actor.application, host: event.actor.host,
                            pid: event.actor.pid, actor: event.actor.name,
                            details: try? JSONDecoder().decode(JSONValue.self, from: Data(event.detailsJSON.utf8)),
                            macKeyID: event.macKeyID.rawValue)
                        do {
                            print(String(decoding: try encoder.encode(line), as: UTF8.self))
                        } catch {
                            failure = error
                        }
                    } else {
                        let row =
                            event.clientID.map {
                                "client '\(CLI.printable($0))', provider '\(CLI.printable(event.provider ?? ""))'"
                            }
                            ?? "vault"
                        let who =
                            "\(event.actor.name.map { "\($0) via " } ?? "")\(event.actor.application)@\(event.actor.host)[\(event.actor.pid)]"
                        print(
                            "\(CLI.iso8601(event.time))  \(event.kind)  \(row)  \(event.outcome)"
                                + "\(event.keyID.map { "  key \($0)" } ?? "")  \(CLI.printable(event.detailsJSON))  "
                                + "\(CLI.printable(who))  #\(event.sequence)")
                    }
                }
            }
            if let failure { throw failure }
        }
    }
}

struct AuditVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every chain of the audit trail; exit 1 and name the first broken link of each.",
        discussion: """
            Needs every key that authenticated the events kept (the current key, and previous keys for older \
            events). Events under a key that is not configured cannot be checked: they are counted, and the \
            exit status is 1.
            """)

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let report = try await CLI.withVault { try await $0.verifyAudit() }
        if json {
            try CLI.printJSON(report)
        } else {
            for problem in report.problems { print("BROKEN \(CLI.printable(problem.description))") }
            print(
                "\(report.chains) chain\(report.chains == 1 ? "" : "s"), \(report.events) event"
                    + "\(report.events == 1 ? "" : "s") checked, \(report.problems.count) broken")
            if report.unauthenticated > 0 {
                print(
                    "\(report.unauthenticated) events are authenticated under a key that is not configured: add it "
                        + "to TOKEN_VAULT_PREVIOUS_KEYS_FILE to check them, or prune them")
            }
            if report.rowsWithoutChain > 0 {
                print(
                    "note: \(CLI.rows(report.rowsWithoutChain)) of oauth_tokens have no audit chain (stored while "
                        + "the audit was off, or their chain was deleted)")
            }
        }
        if !report.ok { throw ExitCode(1) }
    }
}

struct AuditPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove the audit events made before T; the remaining chains stay verifiable.",
        discussion: """
            Run it as the database role that owns the tables: the application's role should not be allowed to \
            delete events (docs/audit.md). A chain that does not verify is left whole, and the exit status is 1.

            Example:
              token-vault audit prune --before 400d
            """)

    @Option(help: "Remove events made before T: ISO 8601, or an age such as 400d.")
    var before: String

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws { _ = try Audit.parseTime(before, option: "--before") }

    func run() async throws {
        let cutoff = try Audit.parseTime(before, option: "--before")
        let report = try await CLI.withVault { try await $0.pruneAudit(before: cutoff) }
        if json {
            try CLI.printJSON(report)
        } else {
            for problem in report.refused { print("KEPT \(CLI.printable(problem.description))") }
            print(
                "removed \(report.events) event\(report.events == 1 ? "" : "s") made before \(CLI.iso8601(cutoff)) "
                    + "from \(report.chains) chain\(report.chains == 1 ? "" : "s")")
        }
        if !report.refused.isEmpty { throw ExitCode(1) }
    }
}
