import Foundation
import Synchronization

/// One ``TemporaryPgBouncer`` for a whole test process, in front of ``SharedDatabase``'s server, started on first
/// use and stopped when the process exits. Databases made with ``TestDatabase/create()`` are reachable through it
/// with ``url(database:)``.
public enum SharedPgBouncer {
    private static let started: Result<TemporaryPgBouncer, TemporaryPostgres.StartError> = {
        do {
            let bouncer = try TemporaryPgBouncer.start(inFrontOf: SharedDatabase.url())
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
}
