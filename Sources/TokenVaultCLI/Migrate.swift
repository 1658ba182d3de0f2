import ArgumentParser
import TokenVault
import TokenVaultCommandSupport

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or upgrade the database schema (safe to run again, and from several hosts at once).",
        discussion: "Example:\n  DATABASE_URL=postgresql://vault@localhost/vault token-vault migrate")

    func run() async throws {
        let applied = try await CLI.withVault(needsKeys: false) { try await $0.migrate() }
        if applied.isEmpty {
            print("schema is up to date")
        } else {
            print("applied migrations \(applied.map(String.init).joined(separator: ", "))")
        }
    }
}
