import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PgBouncer in transaction pooling mode, on a private Unix socket, in front of a PostgreSQL server:
/// what a vault meets behind PgBouncer, RDS Proxy or a hosted pooler, where each transaction (and each statement
/// outside one) may run on another server connection.
///
/// It finds `pgbouncer` on `PATH` or in `/usr/sbin`, runs it as the `postgres` user when the current user is root
/// (PgBouncer refuses to run as root), lets every database of the server through (`*`) with few server connections
/// per database so that clients share them, authenticates clients with `trust`, listens on no TCP port, and deletes
/// everything when stopped:
///
/// ```swift
/// let postgres = try TemporaryPostgres.start()
/// let bouncer = try TemporaryPgBouncer.start(inFrontOf: postgres.databaseURL)
/// defer { bouncer.stop(); postgres.stop() }
/// var configuration = VaultConfiguration(databaseURL: bouncer.url(database: "postgres"), keyring: keyring)
/// configuration.preparedStatements = false
/// ```
public final class TemporaryPgBouncer: Sendable {
    /// The temporary directory holding the configuration, the socket, the pid file and the log.
    public let directory: String
    /// The port in the socket's name (`.s.PGSQL.<port>`); no TCP port is opened.
    public let port: Int
    /// The user that clients connect as (the server's).
    public let user: String
    let runAs: String?

    init(directory: String, port: Int, user: String, runAs: String?) {
        self.directory = directory
        self.port = port
        self.user = user
        self.runAs = runAs
    }

    /// libpq conninfo for `database` through the pooler.
    public func url(database: String) -> String {
        "host=\(directory) port=\(port) user=\(user) dbname=\(database)"
    }

    /// Starts PgBouncer in front of the server at `host` (a host name or a socket directory) and `port`, logging
    /// in as `user` (with `password` when the server asks for one). Fails loudly when PgBouncer is not installed.
    /// - Parameters:
    ///   - poolSize: server connections per database; small, so that clients share them.
    ///   - roundRobin: hand out idle server connections in turn rather than the last used first, so that
    ///     consecutive statements of one client land on different server connections.
    public static func start(
        host: String, port: Int, user: String, password: String? = nil, poolSize: Int = 2, roundRobin: Bool = true
    ) throws -> TemporaryPgBouncer {
        let binary = try findBinary()
        let runAs: String? = geteuid() == 0 ? "postgres" : nil
        var template = Array("/tmp/token-vault-pgb-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw TemporaryPostgres.StartError(
                description: "cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        let directory = String(cString: made)
        let listenPort = 6432
        let bouncer = TemporaryPgBouncer(directory: directory, port: listenPort, user: user, runAs: runAs)
        do {
            func quoted(_ value: String) -> String { "\"\(value.replacingOccurrences(of: "\"", with: "\"\""))\"" }
            // trust: no client authentication, but the user must be listed; the password is for the server.
            try write("\(quoted(user)) \(quoted(password ?? ""))\n", to: "\(directory)/userlist.txt")
            try write(
                """
                [databases]
                * = host=\(host) port=\(port)

                [pgbouncer]
                pool_mode = transaction
                listen_addr =
                listen_port = \(listenPort)
                unix_socket_dir = \(directory)
                auth_type = trust
                auth_file = \(directory)/userlist.txt
                default_pool_size = \(poolSize)
                min_pool_size = 0
                reserve_pool_size = 0
                server_round_robin = \(roundRobin ? 1 : 0)
                max_client_conn = 1000
                ignore_startup_parameters = extra_float_digits
                logfile = \(directory)/pgbouncer.log
                pidfile = \(directory)/pgbouncer.pid

                """, to: "\(directory)/pgbouncer.ini")
            if let runAs {
                try hand(directory, to: runAs, files: ["userlist.txt", "pgbouncer.ini"])
            }
            let argv = (runAs.map { ["/usr/sbin/runuser", "-u", $0, "--"] } ?? []) + [binary]
            try spawnAndWait(argv + ["-d", "-q", "\(directory)/pgbouncer.ini"], log: "\(directory)/start.out")
            try bouncer.waitUntilListening()
        } catch {
            let log = (try? String(contentsOfFile: "\(directory)/pgbouncer.log", encoding: .utf8)) ?? ""
            bouncer.stop()
            throw TemporaryPostgres.StartError(description: "\(error)\(log.isEmpty ? "" : "\npgbouncer log:\n\(log)")")
        }
        return bouncer
    }

    /// PgBouncer in front of the server that `databaseURL` (a conninfo of unquoted `key=value` pairs, such as
    /// ``TemporaryPostgres/databaseURL``, or a `postgresql://` URL) points at, as its user.
    public static func start(
        inFrontOf databaseURL: String, poolSize: Int = 2, roundRobin: Bool = true
    ) throws -> TemporaryPgBouncer {
        let server = try server(of: databaseURL)
        return try start(
            host: server.host, port: server.port, user: server.user, password: server.password, poolSize: poolSize,
            roundRobin: roundRobin)
    }

    /// Host, port, user and password of a conninfo (unquoted `key=value` pairs) or a `postgresql://` URL, with
    /// libpq's defaults for what it leaves out.
    package static func server(
        of url: String
    ) throws -> (host: String, port: Int, user: String, password: String?, database: String) {
        var fields: [String: String] = [:]
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            guard let components = URLComponents(string: url) else {
                throw TemporaryPostgres.StartError(description: "cannot read the database URL")
            }
            fields["host"] = components.host.flatMap { $0.isEmpty ? nil : $0.removingPercentEncoding }
            fields["port"] = components.port.map(String.init)
            fields["user"] = components.user.flatMap { $0.removingPercentEncoding }
            fields["password"] = components.password.flatMap { $0.removingPercentEncoding }
            let path = components.path.drop { $0 == "/" }
            if !path.isEmpty { fields["dbname"] = String(path).removingPercentEncoding }
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
            password: fields["password"] ?? environment["PGPASSWORD"],
            database: fields["dbname"] ?? environment["PGDATABASE"] ?? fields["user"] ?? environment["PGUSER"]
                ?? "postgres"
        )
    }

    /// A handle on a PgBouncer that `start` made in another process, so that it can be stopped.
    public static func attach(directory: String) -> TemporaryPgBouncer {
        TemporaryPgBouncer(directory: directory, port: 6432, user: "", runAs: nil)
    }

    /// Stops PgBouncer at once (SIGTERM, then SIGKILL after 10 seconds) and deletes the directory. Safe to call
    /// twice.
    public func stop() {
        if let text = try? String(contentsOfFile: "\(directory)/pgbouncer.pid", encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0
        {
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while Self.isRunning(pid) && Date() < deadline { usleep(20_000) }
            if Self.isRunning(pid) { kill(pid, SIGKILL) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Whether `pid` exists and has not exited: the daemon's parent is init, which may reap it late, and a zombie
    /// still answers `kill(pid, 0)`.
    private static func isRunning(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        // /proc files report a size of 0, which Foundation's readers trust: read(2) it.
        let descriptor = open("/proc/\(pid)/stat", O_RDONLY)
        guard descriptor >= 0 else { return true }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = read(descriptor, &buffer, buffer.count)
        let stat = String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self)
        guard let end = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(after: end)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    /// Waits up to 10 seconds for the socket to accept connections.
    private func waitUntilListening() throws {
        let socketPath = "\(directory)/.s.PGSQL.\(port)"
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if Self.accepts(socketPath) { return }
            usleep(20_000)
        }
        throw TemporaryPostgres.StartError(description: "pgbouncer did not listen on \(socketPath) within 10 s")
    }

    private static func accepts(_ path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    static func findBinary() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin"]
        where FileManager.default.isExecutableFile(atPath: "\(directory)/pgbouncer") {
            return "\(directory)/pgbouncer"
        }
        throw TemporaryPostgres.StartError(
            description: "PgBouncer is not installed: no pgbouncer on PATH or in /usr/sbin. Install it (Debian/Ubuntu: "
                + "apt-get install -y pgbouncer); the tests of the vault behind a connection pooler need it.")
    }

    private static func write(_ text: String, to path: String) throws {
        guard
            FileManager.default.createFile(
                atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw TemporaryPostgres.StartError(description: "cannot write \(path)")
        }
    }

    /// Gives `directory` and its `files` to `user`, so that PgBouncer running as that user can read its
    /// configuration and write its socket, pid file and log.
    private static func hand(_ directory: String, to user: String, files: [String]) throws {
        guard let entry = getpwnam(user) else {
            throw TemporaryPostgres.StartError(
                description: "running as root, but there is no '\(user)' user to run PgBouncer as (PgBouncer refuses "
                    + "to run as root). Install the postgresql package, which creates it.")
        }
        for path in [directory] + files.map({ "\(directory)/\($0)" }) {
            guard chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
                throw TemporaryPostgres.StartError(
                    description: "cannot hand \(path) to '\(user)': \(String(cString: strerror(errno)))")
            }
        }
    }
}
