import ArgumentParser
import Foundation
import TokenVault
import TokenVaultCommandSupport

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Show the configured keys, where each came from and the rows under each; never a key.",
        discussion: """
            Loads the keys as every command does (running TOKEN_VAULT_KEY_COMMAND and \
            TOKEN_VAULT_PREVIOUS_KEYS_COMMAND if set), then counts the rows sealed under each key id. A previous \
            key that no row uses any more can be retired (a warning on stderr says so); rows under a key id that is \
            not configured cannot be opened. First and last use of each key come from the audit trail once there \
            is one; until then they are shown as not recorded.

            Examples:
              token-vault keys
              token-vault keys --json
            """)

    @Flag(help: "Print JSON.")
    var json = false

    struct KeyEntry: Encodable {
        let id: String
        let role: String
        let source: String?
        let rows: Int
        let retirable: Bool
        let firstUse: Date?
        let lastUse: Date?
        /// Audit events authenticated under the key: retiring it would leave them unverifiable.
        let auditEvents: Int

        enum CodingKeys: String, CodingKey {
            case id, role, source, rows, retirable
            case firstUse = "first_use", lastUse = "last_use", auditEvents = "audit_events"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(role, forKey: .role)
            try container.encode(source, forKey: .source)
            try container.encode(rows, forKey: .rows)
            try container.encode(retirable, forKey: .retirable)
            try container.encode(firstUse, forKey: .firstUse)
            try container.encode(lastUse, forKey: .lastUse)
            try container.encode(auditEvents, forKey: .auditEvents)
        }
    }

    struct Report: Encodable {
        let keys: [KeyEntry]
        let retirable: [String]
        let useRecorded: Bool

        enum CodingKeys: String, CodingKey {
            case keys, retirable
            case useRecorded = "use_recorded"
        }
    }

    func run() async throws {
        let loaded: Keyring.Loaded
        do {
            loaded = try CLI.loadKeys()
        } catch {
            throw CLI.fail(error)
        }
        let keyring = loaded.keyring
        let report = try await CLI.withVault(keys: loaded) { vault in
            let counts = try await vault.rowCountsByKeyID()
            let uses = try await vault.keyUse()
            var entries: [KeyEntry] = []
            let recorded = !uses.isEmpty
            func entry(_ id: KeyID, role: String) async throws -> KeyEntry {
                let use = uses[id]
                let rows = counts[id] ?? 0
                // Retirable only when neither a row nor an audit event still needs it to open or verify.
                return KeyEntry(
                    id: id.rawValue, role: role, source: loaded.sources[id], rows: rows,
                    retirable: role == "previous" && rows == 0 && use == nil, firstUse: use?.firstUse,
                    lastUse: use?.lastUse, auditEvents: use?.events ?? 0)
            }
            entries.append(try await entry(keyring.current.id, role: "current"))
            for key in keyring.previous { entries.append(try await entry(key.id, role: "previous")) }
            for (id, _) in counts.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where keyring.key(for: id) == nil {
                entries.append(try await entry(id, role: "not configured"))
            }
            return Report(
                keys: entries, retirable: entries.filter(\.retirable).map(\.id), useRecorded: recorded)
        }
        CLI.warnRetirable(report.retirable.map { KeyID(rawValue: $0) })
        if json {
            try CLI.printJSON(report)
            return
        }
        for entry in report.keys {
            var line =
                "\(entry.role.padding(toLength: 14, withPad: " ", startingAt: 0)) \(entry.id)  \(CLI.rows(entry.rows))"
            if let source = entry.source { line += "  from \(source)" }
            if entry.retirable { line += "  (can be retired)" }
            if entry.role == "previous", entry.rows == 0, entry.auditEvents > 0 {
                line +=
                    "  (no row, but \(entry.auditEvents) audit events are authenticated under it: keep it while they are kept)"
            }
            if entry.role == "not configured" { line += "  (cannot be opened: add that key to the previous keys)" }
            if let first = entry.firstUse, let last = entry.lastUse {
                line += "  used \(CLI.iso8601(first)) to \(CLI.iso8601(last))"
            }
            print(CLI.printable(line))
        }
        if !report.useRecorded {
            print("first and last use: not recorded (the audit trail is off or empty: TOKEN_VAULT_AUDIT)")
        }
    }
}
