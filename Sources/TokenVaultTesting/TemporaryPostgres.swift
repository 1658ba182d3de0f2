import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster on a private Unix socket in a temporary directory.
///
/// It finds `initdb` and `pg_ctl` on `PATH` or under `/usr/lib/postgresql/*/bin`, runs them as the `postgres`
/// user when the current user is root (PostgreSQL refuses to run as root), listens on no TCP port, and deletes
/// everything when stopped. Use it in your own tests:
///
/// ```swift
/// let postgres = try TemporaryPostgres.start()
/// defer { postgres.stop() }
/// let configuration = VaultConfiguration(databaseURL: postgres.databaseURL, keyring: keyring)
/// ```
public final class TemporaryPostgres: Sendable {
    /// libpq conninfo for the cluster (`host=<socket dir> port=… user=postgres dbname=postgres`).
    public let databaseURL: String
    /// The temporary directory holding the data directory, the socket and the server log.
    public let directory: String
    let binDirectory: String
    let runAs: String?

    init(databaseURL: String, directory: String, binDirectory: String, runAs: String?) {
        self.databaseURL = databaseURL
        self.directory = directory
        self.binDirectory = binDirectory
        self.runAs = runAs
    }

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Creates and starts a cluster. Fails loudly when PostgreSQL is not installed.
    /// - Parameter settings: server settings (`name=value`) added to the command line, after the defaults.
    public static func start(port: Int = 5432, settings: [String] = []) throws -> TemporaryPostgres {
        let bin = try findBinDirectory()
        let runAs: String? = geteuid() == 0 ? "postgres" : nil
        let directory = try makeDirectory(runAs: runAs)
        let cluster = TemporaryPostgres(
            databaseURL: "host=\(directory) port=\(port) user=postgres dbname=postgres", directory: directory,
            binDirectory: bin, runAs: runAs)
        do {
            try cluster.run(
                "initdb",
                [
                    "-D", "\(directory)/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
                    "--no-sync",
                ])
            try cluster.startServer(port: port, settings: settings)
        } catch {
            let log = (try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? ""
            cluster.stop()
            throw StartError(description: "\(error)\(log.isEmpty ? "" : "\nserver log:\n\(log)")")
        }
        return cluster
    }

    /// Starts the server of the data directory, listening only on a socket in `directory`.
    func startServer(port: Int, settings: [String]) throws {
        let options =
            "-k \(directory) -p \(port) -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            + "-c full_page_writes=off -c max_connections=300" + settings.map { " -c \($0)" }.joined()
        try run(
            "pg_ctl",
            ["-D", "\(directory)/data", "-l", "\(directory)/server.log", "-o", options, "-w", "-t", "60", "start"])
    }

    /// A new temporary directory, owned by `runAs` when given.
    static func makeDirectory(runAs: String?) throws -> String {
        var template = Array("/tmp/token-vault-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw StartError(description: "cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        let directory = String(cString: made)
        if let user = runAs {
            guard let entry = getpwnam(user) else {
                throw StartError(
                    description: "running as root, but there is no '\(user)' user to run PostgreSQL as "
                        + "(PostgreSQL refuses to run as root). Install the postgresql package, which creates it.")
            }
            guard chown(directory, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
                throw StartError(
                    description: "cannot hand \(directory) to '\(user)': \(String(cString: strerror(errno)))")
            }
        }
        return directory
    }

    /// Stops the server at once and deletes the directory. Safe to call twice.
    public func stop() {
        if FileManager.default.fileExists(atPath: "\(directory)/data/postmaster.pid") {
            try? run("pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func findBinDirectory() throws -> String {
        let fileManager = FileManager.default
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for entry in path.split(separator: ":") {
            let directory = String(entry)
            if fileManager.isExecutableFile(atPath: "\(directory)/initdb")
                && fileManager.isExecutableFile(atPath: "\(directory)/pg_ctl")
            {
                return directory
            }
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? fileManager.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap { Int($0) }.sorted(by: >)
        for version in versions where fileManager.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw StartError(
            description: "PostgreSQL is not installed: no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin. "
                + "Install it (Debian/Ubuntu: apt-get install -y postgresql) or set DATABASE_URL to a server.")
    }

    /// Runs a PostgreSQL binary (as `postgres` when we are root) and throws with its output when it fails. `tool` is
    /// a name in the binaries' directory, or an absolute path.
    ///
    /// posix_spawn and waitpid rather than Foundation's Process: the server that `pg_ctl start` leaves behind
    /// inherits descriptors, and Process would wait for them to close.
    func run(_ tool: String, _ arguments: [String]) throws {
        let executable = tool.hasPrefix("/") ? tool : "\(binDirectory)/\(tool)"
        let argv = runAs.map { ["/usr/sbin/runuser", "-u", $0, "--", executable] } ?? [executable]
        do {
            try spawnAndWait(argv + arguments, log: "\(directory)/\(tool.split(separator: "/").last ?? "tool").out")
        } catch let error as TemporaryPostgres.StartError {
            throw StartError(description: "\(tool) \(error.description)")
        }
    }
}

/// Runs `argv` with stdin from /dev/null and stdout and stderr into `log`; throws with the log when it fails.
///
/// posix_spawn and waitpid rather than Foundation's Process: a server that the command leaves behind (`pg_ctl start`,
/// `pgbouncer -d`) inherits descriptors, and Process would wait for them to close.
func spawnAndWait(_ argv: [String], log logPath: String) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // The child starts with no signal blocked and default handlers: it inherits the calling thread's mask
    // otherwise, and a Dispatch thread blocks most signals (PgBouncer would then never see its SIGTERM).
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    var all = sigset_t()
    sigemptyset(&none)
    sigfillset(&all)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let cArguments = argv.map { strdup($0) } + [nil]
    defer { cArguments.forEach { free($0) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, argv[0], &actions, &attributes, cArguments, environ)
    guard spawned == 0 else {
        throw TemporaryPostgres.StartError(description: "cannot run \(argv[0]): \(String(cString: strerror(spawned)))")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exited = (status & 0x7f) == 0
    let code = (status >> 8) & 0xff
    guard exited && code == 0 else {
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw TemporaryPostgres.StartError(description: "failed (status \(status)): \(output)")
    }
}

extension TemporaryPostgres {
    /// A handle on a cluster that `start()` made in another process, so that it can be stopped.
    public static func attach(directory: String) throws -> TemporaryPostgres {
        TemporaryPostgres(
            databaseURL: "", directory: directory, binDirectory: try findBinDirectory(),
            runAs: geteuid() == 0 ? "postgres" : nil)
    }
}
