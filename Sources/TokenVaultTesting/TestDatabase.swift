import Foundation
import TokenVault

/// A fresh, empty database on the shared test server (see `SharedDatabase`), so that tests cannot see each
/// other's rows. Dropped by `drop()`; left behind databases vanish with the throwaway cluster anyway.
public struct TestDatabase: Sendable {
    /// Connection settings for the new database.
    public let url: String
    /// The database's name.
    public let name: String
    let serverURL: String

    /// Creates `token_vault_test_<random>` on the shared server.
    public static func create() async throws -> TestDatabase {
        let serverURL = try SharedDatabase.url()
        let name = "token_vault_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())"
        try await AdminSQL.execute("CREATE DATABASE \(name)", url: serverURL)
        return TestDatabase(url: Self.url(serverURL, database: name), name: name, serverURL: serverURL)
    }

    /// Drops the database, disconnecting anyone still on it.
    public func drop() async {
        try? await AdminSQL.execute("DROP DATABASE IF EXISTS \(name) WITH (FORCE)", url: serverURL)
    }

    /// Connection settings for the new database as another role (the shared server trusts local connections).
    public func url(user: String) -> String {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"),
            var components = URLComponents(string: url)
        else {
            return "\(url) user=\(user)"
        }
        components.user = user
        return components.string ?? url
    }

    /// `url` with its database replaced: the path of a `postgres://` URL, or a trailing `dbname=` in conninfo
    /// (the last occurrence of a keyword wins).
    package static func url(_ url: String, database: String) -> String {
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"),
            var components = URLComponents(string: url)
        else {
            return "\(url) dbname=\(database)"
        }
        components.path = "/\(database)"
        return components.string ?? url
    }
}
