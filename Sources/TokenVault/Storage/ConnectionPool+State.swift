/// What a caller that asked the pool for a connection is given.
enum PoolGrant<Connection> {
    case connection(Connection)
    /// A slot: the caller opens a new connection (counted in `open` already).
    case slot
    case closed
    /// The caller's task was cancelled; it holds nothing.
    case cancelled
    /// Nothing came free within the pool's wait limit; the caller holds nothing.
    case timedOut
}

extension PoolGrant: Sendable where Connection: Sendable {}
extension PoolGrant: Equatable where Connection: Equatable {}

/// The connection pool's bookkeeping as a value: the idle connections, how many connections exist or are being
/// opened, the callers waiting in turn, and whether the pool has shut down.
///
/// Each event (a caller asks, waits, is cancelled, returns a connection, fails to open one; the pool shuts down)
/// is a mutating method that returns an ``Action`` for the pool to carry out once it has let go of its lock.
/// Nothing here suspends, allocates per event on the hot path or touches a connection, and both the connection
/// and the waiter are generic (a `PooledConnection` and a continuation in the pool, plain values in unit tests),
/// so the transitions can be tested without a database, as postgres-nio tests its pool's state machine.
struct PoolState<Connection, Waiter> {
    /// A waiting caller, with an id so that its cancellation can find it.
    struct Queued {
        let id: Int
        let waiter: Waiter
    }

    /// What the pool does after an event, outside its lock.
    enum Action {
        case nothing
        /// Resumes a waiter: with a connection, with a slot to open a connection in, or with `.closed` or
        /// `.cancelled`.
        case resume(Waiter, PoolGrant<Connection>)
        /// Closes a connection no longer counted here (it broke, or came back after shutdown). Its slot passes to
        /// `passSlotTo` when a caller waits, and is freed otherwise.
        case close(Connection, passSlotTo: Waiter?)
        /// After shutdown: resumes every waiter with `.closed` and closes the connections that were idle.
        case shutDown(waiters: [Waiter], idle: [Connection])
    }

    let maximumConnections: Int
    private(set) var idle: [Connection] = []
    /// Connections that exist or are being opened, idle or lent.
    private(set) var open = 0
    /// First come, first served.
    private(set) var waiters: [Queued] = []
    private(set) var closed = false
    private var lastWaiterID = 0

    init(maximumConnections: Int) {
        self.maximumConnections = maximumConnections
    }

    /// A caller asks for a connection. It is given at once the pool's closing, an idle connection (the one
    /// returned last) or a free slot; nil when it must wait (``nextWaiterID()``, then ``enqueue(_:id:taskCancelled:)``).
    mutating func acquire() -> PoolGrant<Connection>? {
        if closed { return .closed }
        if let connection = idle.popLast() { return .connection(connection) }
        if open < maximumConnections {
            open += 1
            return .slot
        }
        return nil
    }

    /// The id under which a caller that must wait will queue, taken before it queues so that its cancellation
    /// handler can look for it whenever it runs.
    mutating func nextWaiterID() -> Int {
        lastWaiterID += 1
        return lastWaiterID
    }

    /// A caller that must wait queues, last. It is resumed at once instead when its task is cancelled already
    /// (a cancellation handler that ran before it queued found nothing to remove), or when a connection or a
    /// slot came free since it asked, or the pool closed.
    mutating func enqueue(_ waiter: Waiter, id: Int, taskCancelled: Bool) -> Action {
        if taskCancelled { return .resume(waiter, .cancelled) }
        if let grant = acquire() { return .resume(waiter, grant) }
        waiters.append(Queued(id: id, waiter: waiter))
        return .nothing
    }

    /// A waiting caller's task is cancelled: it leaves the queue, resumed with `.cancelled`. It is not there when
    /// it has been given something already (or has not queued yet); then nothing happens here, and the caller,
    /// finding its task cancelled, passes what it was given on (``release(_:broken:)``, ``giveUpSlot()``).
    mutating func cancel(waiterID id: Int) -> Action {
        remove(waiterID: id, answering: .cancelled)
    }

    /// A waiting caller's wait limit passes: it leaves the queue, resumed with `.timedOut`, unless a grant or its
    /// cancellation took it out first.
    mutating func timeOut(waiterID id: Int) -> Action {
        remove(waiterID: id, answering: .timedOut)
    }

    private mutating func remove(waiterID id: Int, answering grant: PoolGrant<Connection>) -> Action {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return .nothing }
        return .resume(waiters.remove(at: index).waiter, grant)
    }

    /// A caller returns a connection: to the first waiter, else to the idle list. A broken one, or any after
    /// shutdown, is closed and its slot passed on.
    mutating func release(_ connection: Connection, broken: Bool) -> Action {
        if broken || closed { return .close(connection, passSlotTo: takeSlot()) }
        if !waiters.isEmpty { return .resume(waiters.removeFirst().waiter, .connection(connection)) }
        idle.append(connection)
        return .nothing
    }

    /// A caller gives back a slot it will not use: opening its connection failed, or its task was cancelled
    /// after it was given the slot. The slot passes to the first waiter, or is freed.
    mutating func giveUpSlot() -> Action {
        guard let waiter = takeSlot() else { return .nothing }
        return .resume(waiter, .slot)
    }

    /// The first waiter, to be given a slot that came free (`open` is unchanged); nil when nobody waits or the
    /// pool is closed, and then the slot is freed.
    private mutating func takeSlot() -> Waiter? {
        if !closed, !waiters.isEmpty { return waiters.removeFirst().waiter }
        open -= 1
        return nil
    }

    /// The pool shuts down: every waiter is resumed with `.closed` and the idle connections are closed. Lent
    /// connections are closed as they come back, and callers that ask from now on are given `.closed`.
    mutating func shutdown() -> Action {
        closed = true
        let pending = waiters.map(\.waiter)
        let dropped = idle
        waiters.removeAll()
        idle.removeAll()
        open -= dropped.count
        return .shutDown(waiters: pending, idle: dropped)
    }
}

extension PoolState: Sendable where Connection: Sendable, Waiter: Sendable {}
extension PoolState.Queued: Sendable where Waiter: Sendable {}
extension PoolState.Action: Sendable where Connection: Sendable, Waiter: Sendable {}
extension PoolState.Action: Equatable where Connection: Equatable, Waiter: Equatable {}
