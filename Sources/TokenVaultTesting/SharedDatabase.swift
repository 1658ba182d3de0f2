import Foundation
import Synchronization

/// One database for a whole test process: `DATABASE_URL` when it is set, otherwise a `TemporaryPostgres`
/// started on first use and stopped when the process exits.
public enum SharedDatabase {
    private static let started: Result<String, TemporaryPostgres.StartError> = {
        if let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty {
            return .success(url)
        }
        do {
            let cluster = try TemporaryPostgres.start()
            sharedCluster.withLock { $0 = cluster }
            atexit { SharedDatabase.stopAtExit() }
            return .success(cluster.databaseURL)
        } catch let error as TemporaryPostgres.StartError {
            return .failure(error)
        } catch {
            return .failure(.init(description: "\(error)"))
        }
    }()

    private static let sharedCluster = Mutex<TemporaryPostgres?>(nil)

    /// The database URL to test against. Throws, loudly, when no PostgreSQL can be had.
    public static func url() throws -> String {
        try started.get()
    }

    /// Stops the cluster now (also done automatically at exit).
    public static func stopAtExit() {
        sharedCluster.withLock { cluster in
            cluster?.stop()
            cluster = nil
        }
    }
}
