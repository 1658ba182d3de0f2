import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What tests of failures need: a streaming standby to fail over to, promoting it, and freezing a server.
extension TemporaryPostgres {
    /// Starts a streaming standby of this cluster on its own socket directory and `port`: a copy made with
    /// `pg_basebackup -R`, which also tells it where its primary is. Stop it with ``stop()``.
    ///
    /// For synchronous replication, start the primary with the setting `synchronous_standby_names='*'`: its commits
    /// then wait for this standby (and only once it is connected).
    public func startStandby(port: Int, settings: [String] = []) throws -> TemporaryPostgres {
        let directory = try Self.makeDirectory(runAs: runAs)
        let standby = TemporaryPostgres(
            databaseURL: "host=\(directory) port=\(port) user=postgres dbname=postgres", directory: directory,
            binDirectory: binDirectory, runAs: runAs)
        do {
            try standby.run(
                basebackup(),
                [
                    "-D", "\(directory)/data", "-R", "-X", "stream", "-c", "fast", "--no-sync", "-h", self.directory,
                    "-p", String(self.port), "-U", "postgres",
                ])
            try standby.startServer(port: port, settings: settings)
        } catch {
            let log = (try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? ""
            standby.stop()
            throw StartError(description: "\(error)\(log.isEmpty ? "" : "\nserver log:\n\(log)")")
        }
        return standby
    }

    /// `pg_basebackup` beside the real `pg_ctl` (which `PATH` may hold only a link to, as Debian's wrappers do).
    private func basebackup() -> String {
        guard let real = realpath("\(binDirectory)/pg_ctl", nil) else { return "pg_basebackup" }
        defer { free(real) }
        return URL(fileURLWithPath: String(cString: real)).deletingLastPathComponent().appendingPathComponent(
            "pg_basebackup"
        ).path
    }

    /// Promotes this standby to a primary and waits until it accepts writes.
    public func promote() throws {
        try run("pg_ctl", ["-D", "\(directory)/data", "-w", "-t", "60", "promote"])
    }

    /// The port the server listens on (its socket is `directory/.s.PGSQL.<port>`).
    public var port: Int {
        databaseURL.split(separator: " ").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) } ?? 5432
    }

    /// Sends `signal` to the server's postmaster and every process it started: `SIGSTOP` freezes the whole server
    /// (connections stay open and silent, as with a hung host), `SIGCONT` lets it run on. Linux only (reads
    /// `/proc`). Always send `SIGCONT` after `SIGSTOP`, in a `defer` or `tearDown`: a frozen server cannot be stopped.
    public func signalServer(_ signal: Int32) throws {
        let pidFile = (try? String(contentsOfFile: "\(directory)/data/postmaster.pid", encoding: .utf8)) ?? ""
        guard let postmaster = pidFile.split(separator: "\n").first.flatMap({ pid_t($0) }) else {
            throw StartError(description: "the server in \(directory) is not running (no postmaster.pid)")
        }
        // The postmaster first, so that it does not react to its children stopping; then the children.
        for pid in [postmaster] + Self.children(of: postmaster) where kill(pid, signal) != 0 && errno != ESRCH {
            throw StartError(description: "cannot signal process \(pid): \(String(cString: strerror(errno)))")
        }
    }

    /// The processes whose parent is `parent`, from `/proc/<pid>/stat`.
    static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return nil }
            // "pid (comm) state ppid …": the command may hold spaces and parentheses, so read after the last ')'.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == parent ? pid : nil
        }
    }
}
