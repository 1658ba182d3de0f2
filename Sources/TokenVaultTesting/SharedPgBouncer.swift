import Foundation
import Synchronization

/// One ``TemporaryPgBouncer`` for a whole test process, in front of ``SharedDatabase``'s server, started on first
/// use and stopped when the process exits. Databases made with ``TestDatabase/create()`` are reachable through it
/// with ``url(database:)``.
public enum SharedPgBouncer {
    private static let started: Result<TemporaryPgBouncer, TemporaryPostgres.StartError> = {
        do {
            let server = try backend(of: SharedDatabase.url())
            let bouncer = try TemporaryPgBouncer.start(
                host: server.host, port: server.port, user: server.user, password: server.password)
            running.withLock { $0 = bouncer }
            atexit { SharedPgBouncer.stopAtExit() }
            return .success(bouncer)
        } catch let error as TemporaryPostgres.StartError {
            return .failure(error)
        } catch {
            return .failure(.init(description: "\(error)"))
        }
    }()

    private static let running = Mutex<TemporaryPgBouncer?>(nil)

    /// libpq conninfo for `database` through the shared PgBouncer. Throws, loudly, when PostgreSQL or PgBouncer
    /// cannot be had.
    public static func url(database: String) throws -> String {
        try started.get().url(database: database)
    }

    /// Stops PgBouncer now (also done automatically at exit).
    public static func stopAtExit() {
        running.withLock { bouncer in
            bouncer?.stop()
            bouncer = nil
        }
    }

    /// Host, port, user and password of a conninfo (unquoted `key=value` pairs) or a `postgresql://` URL, with
    /// libpq's defaults for what it leaves out.
    static func backend(of url: String) throws -> (host: String, port: Int, user: String, password: String?) {
        var fields: [String: String] = [:]
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard let components = URLComponents(string: url) else {
                throw TemporaryPostgres.StartError(description: "cannot read the database URL")
            }
            fields["host"] = components.host.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
            fields["port"] = components.port.map(String.init)
            fields["user"] = components.user.flatMap { $0.removingPercentEncoding }
            fields["password"] = components.password.flatMap { $0.removingPercentEncoding }
            for item in components.queryItems ?? [] { if let value = item.value { fields[item.name] = value } }
        } else {
            for pair in url.split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { fields[parts[0]] = parts[1] }
            }
        }
        let environment = ProcessInfo.processInfo.environment
        return (
            host: fields["host"] ?? environment["PGHOST"] ?? "/var/run/postgresql",
            port: Int(fields["port"] ?? environment["PGPORT"] ?? "5432") ?? 5432,
            user: fields["user"] ?? environment["PGUSER"] ?? "postgres",
            password: fields["password"] ?? environment["PGPASSWORD"]
        )
    }
}
