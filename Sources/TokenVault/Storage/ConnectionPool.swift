import Foundation
import Logging
import Synchronization
import Tracing

/// A bounded pool of PostgreSQL connections.
///
/// At most `maximumConnections` exist at once; callers beyond that wait their turn in order, and one whose task
/// is cancelled leaves the queue and throws. A connection that broke is closed and replaced, and an idempotent
/// operation that failed because its connection dropped is run once more on a fresh connection. The bookkeeping
/// sits behind a lock rather than in an actor: taking an idle connection is then a few nanoseconds with no
/// executor hop, which matters next to a 50 µs query.
package final class ConnectionPool: Sendable {
    let conninfo: String
    let maximumConnections: Int
    let schema: String?
    /// Named prepared statements or unnamed ones, for every connection of the pool.
    package let statements: StatementMode
    /// Set when the settings cannot work (a pool size out of range, a schema name that cannot go into
    /// `search_path`, a schema without prepared statements); every acquire throws it. Checked once, not per query.
    private let configurationError: VaultError?
    private let logging: ContextLogger
    private var logger: Logger { logging.current }
    /// A futex word in this object rather than a Foundation lock: nothing to call into on the hot path. The
    /// bookkeeping's transitions are `PoolState`'s; what they call for is done here, outside the lock.
    private let state: Mutex<State>
    /// Numbers the connections' queue labels.
    private let serial = Atomic(0)
    /// Pool waits and their timeouts; nil records nothing.
    private let metrics: VaultMetrics?
    /// Where a span per database call goes; nil: none.
    private let tracer: (any Tracer)?
    /// Whether the task that times out waiters (`reapExpiredWaiters`) is running.
    private let reaping = Atomic(false)

    /// A caller waiting for a connection or a slot, and when its wait limit passes.
    private struct Waiter {
        let continuation: CheckedContinuation<Grant, Never>
        let deadline: ContinuousClock.Instant

        func resume(returning grant: Grant) { continuation.resume(returning: grant) }
    }
    private typealias Grant = PoolGrant<PooledConnection>
    private typealias State = PoolState<PooledConnection, Waiter>

    /// The longest a caller waits for a connection to come free before it fails with `.timedOut`.
    let waitLimit: TimeInterval
    /// The longest each statement waits for the server's answer before it fails with `.timedOut` and its
    /// connection is closed.
    let statementTimeout: TimeInterval

    init(
        conninfo: String, maximumConnections: Int, schema: String? = nil, preparedStatements: Bool = true,
        waitLimit: TimeInterval = 60, statementTimeout: TimeInterval = PGConnection.defaultStatementTimeout,
        metrics: VaultMetrics? = nil, tracer: (any Tracer)? = nil, logger: ContextLogger = ContextLogger(nil)
    ) {
        self.metrics = metrics
        self.tracer = tracer
        self.conninfo = conninfo
        self.maximumConnections = maximumConnections
        self.schema = schema
        self.statements = StatementMode(prepared: preparedStatements, logger: logger)
        self.waitLimit = waitLimit
        self.statementTimeout = statementTimeout
        self.configurationError = Self.problem(
            maximumConnections: maximumConnections, schema: schema, preparedStatements: preparedStatements
        ).map { VaultError(.invalidInput, $0) }
        self.logging = logger
        self.state = Mutex(State(maximumConnections: maximumConnections))
    }

    /// Runs `body` on a pooled connection, off the cooperative thread pool.
    /// - Parameter idempotent: when true and the connection drops, the operation is retried once on a new one.
    package func withConnection<T: Sendable>(
        idempotent: Bool, _ body: @escaping @Sendable (PGConnection) throws -> T
    ) async throws(VaultError) -> T {
        guard let tracer else { return try await run(idempotent: idempotent, body) }
        // A span per database call (the wait for a connection and a retry included), child of the caller's.
        let span = tracer.startSpan("token_vault.db", ofKind: .client)
        span.attributes["db.system"] = "postgresql"
        defer { span.end() }
        do {
            return try await run(idempotent: idempotent, body)
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    private func run<T: Sendable>(
        idempotent: Bool, _ body: @escaping @Sendable (PGConnection) throws -> T
    ) async throws(VaultError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            let connection = try await acquire()
            do {
                let value = try await connection.run(body)
                release(connection)
                return value
            } catch let error as VaultError {
                let broken = error.code == .connectionFailed || connection.isBroken
                release(connection, broken: broken)
                // Not after a statement went unanswered: a second try would double the wait the caller was promised.
                if broken && idempotent && attempt == 1 && error.code != .timedOut {
                    logger.warning(
                        "database connection lost; retrying once on a new connection",
                        metadata: [LogKey.sqlState: "\(error.sqlState ?? "none")"])
                    continue
                }
                throw error
            } catch {
                release(connection)
                throw VaultError(.database, "unexpected database failure (\(type(of: error))).", underlying: error)
            }
        }
    }

    /// Lends one connection for a multi-step operation (a transaction that spans awaits, such as a refresh). The
    /// caller leaves it idle: ``TokenRepository/withTransaction(on:_:)`` rolls back what `body` began.
    func withLease<T: Sendable>(
        _ body: (PooledConnection) async throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        guard let tracer else { return try await lease(body) }
        // One span for the whole multi-step operation (a transaction), as for a single statement.
        let span = tracer.startSpan("token_vault.db", ofKind: .client)
        span.attributes["db.system"] = "postgresql"
        defer { span.end() }
        do {
            return try await lease(body)
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    private func lease<T: Sendable>(
        _ body: (PooledConnection) async throws(VaultError) -> T
    ) async throws(VaultError) -> T {
        let connection = try await acquire()
        do {
            let value = try await body(connection)
            release(connection)
            return value
        } catch {
            release(connection, broken: connection.isBroken)
            throw error
        }
    }

    /// How many connections a pool may have.
    static let sizes = 1...1000

    /// What is wrong with these settings, or nil: the pool's rules, which ``VaultConfiguration/validate()`` applies
    /// when a vault is made, and the pool again (for its own callers) when it is.
    static func problem(maximumConnections: Int, schema: String?, preparedStatements: Bool = true) -> String? {
        if !sizes.contains(maximumConnections) {
            return "maximumConnections must be \(sizes.lowerBound) to \(sizes.upperBound), not \(maximumConnections)."
        }
        if let schema, !isValidSchema(schema) {
            return "the schema name '\(schema)' is not allowed: use 1 to 63 lower-case letters, digits and "
                + "underscores, not starting with a digit."
        }
        if let schema, !preparedStatements {
            // Unnamed statements are for transaction-mode poolers, which neither pass the `options` startup
            // parameter on nor keep a session's SET from leaking to other clients.
            return "schema cannot be used with preparedStatements false (for a connection pooler in transaction "
                + "mode, which cannot carry a session's search_path): leave schema unset and set the search_path "
                + "for the vault's role instead (ALTER ROLE … SET search_path = \(schema)), or give the vault a "
                + "database of its own."
        }
        return nil
    }

    /// A schema name that can go into `search_path` unquoted.
    static func isValidSchema(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        guard let first = scalars.first, !("0"..."9").contains(first), scalars.count <= 63 else { return false }
        return scalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    private static func cancelled() -> VaultError {
        VaultError(.cancelled, "the task was cancelled while it waited for a database connection.")
    }

    private func acquire() async throws(VaultError) -> PooledConnection {
        if let configurationError { throw configurationError }
        // A task already cancelled takes nothing from the pool.
        if Task.isCancelled { throw Self.cancelled() }
        // Fast path without a suspension: an idle connection or a free slot.
        var grant = state.withLock { $0.acquire() }
        if grant == nil {
            grant = await wait()
            if let metrics {
                if case .timedOut = grant! {
                    metrics.poolWait(timedOut: true)
                } else {
                    metrics.poolWait(timedOut: false)
                }
            }
        }
        switch grant! {
        case .connection(let connection):
            return connection
        case .closed:
            throw VaultError(.connectionFailed, "the vault was shut down; create a new Vault.")
        case .cancelled:
            throw Self.cancelled()
        case .timedOut:
            throw VaultError(
                .timedOut,
                "no database connection came free within \(VaultError.seconds(waitLimit)) (all \(maximumConnections) were in "
                    + "use); raise maximumConnections or connectionWaitTimeout, or look for calls that hold "
                    + "connections long.")
        case .slot:
            let label = "token-vault.pg.\(serial.wrappingAdd(1, ordering: .relaxed).newValue)"
            do {
                return try await PooledConnection.connect(
                    conninfo: conninfo, applicationName: "token-vault", label: label, schema: schema,
                    statementTimeout: statementTimeout, statements: statements)
            } catch {
                giveUpSlot()
                throw error
            }
        }
    }

    /// Queues the caller until a connection or a slot is free, the pool closes or the task is cancelled.
    ///
    /// A grant and a cancellation can race; whichever takes the waiter out of the queue, under the lock, wins.
    /// When the grant wins, the caller still fails (its task is cancelled) and passes what it was given on.
    private func wait() async -> Grant {
        let id = state.withLock { $0.nextWaiterID() }
        let grant = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Grant, Never>) in
                let waiter = Waiter(
                    continuation: continuation, deadline: .now + .milliseconds(Int64(waitLimit * 1000)))
                // Task.isCancelled is read under the lock: a handler that ran before the waiter was queued found
                // nothing to remove, but the task was marked cancelled before the handler ran.
                let action = state.withLock { $0.enqueue(waiter, id: id, taskCancelled: Task.isCancelled) }
                if case .nothing = action { startReaping() }
                perform(action)
            }
        } onCancel: {
            perform(state.withLock { $0.cancel(waiterID: id) })
        }
        guard Task.isCancelled else { return grant }
        switch grant {
        case .connection(let connection): release(connection)
        case .slot: giveUpSlot()
        case .closed, .cancelled, .timedOut: return grant
        }
        return .cancelled
    }

    /// Starts the task that times out waiters, unless it runs.
    ///
    /// One task for the pool rather than a timer per wait: a cancelled `Task.sleep` keeps its timer (and memory)
    /// until the time it was to wake, so a timer per wait held about half a kilobyte per wait for the whole wait
    /// limit, 60 s, and a busy pool's memory grew with its rate of waits (measured: 6 MiB per 2,000 refreshes at a
    /// concurrency of 16 on 4 connections).
    private func startReaping() {
        guard reaping.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        Task { [weak self] in await self?.reapExpiredWaiters() }
    }

    /// Times out the waiters whose limit passed, oldest first, sleeping until the oldest's limit; ends when none
    /// waits. Every waiter has the same limit, so the first in the queue is the first to expire.
    private func reapExpiredWaiters() async {
        while true {
            let first = state.withLock { $0.waiters.first.map { ($0.id, $0.waiter.deadline) } }
            guard let (id, deadline) = first else {
                reaping.store(false, ordering: .releasing)
                // A waiter that queued after the look and before the flag fell found the task running: look again.
                let waiting = state.withLock { !$0.waiters.isEmpty }
                guard waiting,
                    reaping.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
                        .exchanged
                else { return }
                continue
            }
            if ContinuousClock.now < deadline {
                try? await Task.sleep(until: deadline, clock: .continuous)
                continue
            }
            perform(state.withLock { $0.timeOut(waiterID: id) })
        }
    }

    /// Returns a connection: to the first waiter, else to the idle list. A broken one is dropped (closed by
    /// its deinit) and its slot passed on.
    private func release(_ connection: PooledConnection, broken: Bool = false) {
        perform(state.withLock { $0.release(connection, broken: broken) })
    }

    private func giveUpSlot() {
        perform(state.withLock { $0.giveUpSlot() })
    }

    /// Does what an event of the pool's state calls for, after the lock is let go.
    private func perform(_ action: State.Action) {
        switch action {
        case .nothing:
            break
        case .resume(let waiter, let grant):
            waiter.resume(returning: grant)
        case .close(let connection, let waiter):
            _ = connection  // dropped: closed by its deinit once its last holder lets go
            waiter?.resume(returning: .slot)
        case .shutDown(let waiters, let idle):
            _ = idle  // dropped here, outside the lock
            for waiter in waiters { waiter.resume(returning: .closed) }
        }
    }

    /// Connections that exist or are being opened (`open`), those of them idle, and callers waiting: for tests
    /// that look for leaks and for a queued waiter.
    var counts: (open: Int, idle: Int, waiting: Int) {
        state.withLock { ($0.open, $0.idle.count, $0.waiters.count) }
    }

    /// Closes idle connections and refuses new work. Connections in use close when they are returned.
    func shutdown() async {
        perform(state.withLock { $0.shutdown() })
    }
}
