import XCTest

@testable import TokenVault

/// The connection pool's state machine over fake connections (Ints) and fake waiters (their ids): no database.
/// The pool itself, over real connections, is tested in TokenVaultIntegrationTests.
final class PoolStateTests: XCTestCase {
    private typealias State = PoolState<Int, Int>

    /// Queues waiter `id` the way the pool does (an id first, then the queue), expecting it to wait.
    private func enqueue(_ state: inout State, file: StaticString = #filePath, line: UInt = #line) -> Int {
        XCTAssertNil(state.acquire(), "the caller should have to wait", file: file, line: line)
        let id = state.nextWaiterID()
        XCTAssertEqual(state.enqueue(id, id: id, taskCancelled: false), .nothing, file: file, line: line)
        return id
    }

    func testGrantsSlotsUpToTheLimitThenQueues() {
        var state = State(maximumConnections: 2)
        XCTAssertEqual(state.acquire(), .slot)
        XCTAssertEqual(state.acquire(), .slot)
        XCTAssertEqual(state.open, 2)
        XCTAssertNil(state.acquire())
        XCTAssertEqual(state.open, 2, "asking in vain takes no slot")
        let id = state.nextWaiterID()
        XCTAssertEqual(state.enqueue(id, id: id, taskCancelled: false), .nothing)
        XCTAssertEqual(state.waiters.map(\.id), [id])
        XCTAssertEqual(state.open, 2)
    }

    func testAnIdleConnectionIsLentBeforeANewSlot() {
        var state = State(maximumConnections: 2)
        XCTAssertEqual(state.acquire(), .slot)
        XCTAssertEqual(state.release(7, broken: false), .nothing)
        XCTAssertEqual(state.idle, [7])
        XCTAssertEqual(state.acquire(), .connection(7))
        XCTAssertEqual(state.open, 1)
        XCTAssertEqual(state.idle, [])
    }

    func testAWaiterIsGivenWhatCameFreeSinceItAsked() {
        var state = State(maximumConnections: 1)
        XCTAssertEqual(state.acquire(), .slot)
        XCTAssertNil(state.acquire())
        let id = state.nextWaiterID()
        // The connection comes back between the caller's asking and its queueing.
        XCTAssertEqual(state.release(1, broken: false), .nothing)
        XCTAssertEqual(state.enqueue(id, id: id, taskCancelled: false), .resume(id, .connection(1)))
        XCTAssertEqual(state.waiters.count, 0)
        XCTAssertEqual(state.idle, [])
    }

    func testWaitersAreServedInOrderAndReleaseHandsToTheFirst() {
        var state = State(maximumConnections: 1)
        XCTAssertEqual(state.acquire(), .slot)
        let first = enqueue(&state)
        let second = enqueue(&state)
        let third = enqueue(&state)
        XCTAssertEqual(state.release(1, broken: false), .resume(first, .connection(1)))
        XCTAssertEqual(state.release(1, broken: false), .resume(second, .connection(1)))
        XCTAssertEqual(state.release(1, broken: false), .resume(third, .connection(1)))
        XCTAssertEqual(state.release(1, broken: false), .nothing)
        XCTAssertEqual(state.idle, [1])
        XCTAssertEqual(state.open, 1)
    }

    func testABrokenConnectionIsClosedAndItsSlotPassedOnOrFreed() {
        var state = State(maximumConnections: 1)
        XCTAssertEqual(state.acquire(), .slot)
        let first = enqueue(&state)
        let second = enqueue(&state)
        XCTAssertEqual(state.release(1, broken: true), .close(1, passSlotTo: first))
        XCTAssertEqual(state.open, 1, "the slot passed on is still counted")
        XCTAssertEqual(state.waiters.map(\.id), [second])
        XCTAssertEqual(state.release(2, broken: true), .close(2, passSlotTo: second))
        XCTAssertEqual(state.release(3, broken: true), .close(3, passSlotTo: nil))
        XCTAssertEqual(state.open, 0)
        XCTAssertEqual(state.idle, [], "a broken connection is never kept")
        XCTAssertEqual(state.acquire(), .slot)
    }

    func testAFailedOpenGivesTheSlotToTheNextWaiterOrFreesIt() {
        var state = State(maximumConnections: 1)
        XCTAssertEqual(state.acquire(), .slot)
        let waiter = enqueue(&state)
        XCTAssertEqual(state.giveUpSlot(), .resume(waiter, .slot))
        XCTAssertEqual(state.open, 1)
        XCTAssertEqual(state.giveUpSlot(), .nothing)
        XCTAssertEqual(state.open, 0)
        XCTAssertEqual(state.acquire(), .slot)
    }

    func testAWaiterWhoseLimitPassesLeavesTheQueueUnlessSomethingCameFirst() {
        var state = PoolState<Int, Int>(maximumConnections: 1)
        XCTAssertEqual(state.acquire(), .slot)
        let first = state.nextWaiterID()
        XCTAssertEqual(state.enqueue(first, id: first, taskCancelled: false), .nothing)
        let second = state.nextWaiterID()
        XCTAssertEqual(state.enqueue(second, id: second, taskCancelled: false), .nothing)
        XCTAssertEqual(state.timeOut(waiterID: first), .resume(first, .timedOut))
        XCTAssertEqual(state.waiters.map(\.id), [second], "only the waiter whose limit passed left")
        XCTAssertEqual(state.release(7, broken: false), .resume(second, .connection(7)))
        XCTAssertEqual(state.timeOut(waiterID: second), .nothing, "granted before its limit: the timer finds nothing")
        XCTAssertEqual(state.open, 1)
    }

    func testCancelRemovesOnlyThatWaiter() {
        var state = State(maximumConnections: 1)
        XCTAssertEqual(state.acquire(), .slot)
        let first = enqueue(&state)
        let second = enqueue(&state)
        let third = enqueue(&state)
        XCTAssertEqual(state.cancel(waiterID: second), .resume(second, .cancelled))
        XCTAssertEqual(state.waiters.map(\.id), [first, third])
        XCTAssertEqual(state.cancel(waiterID: second), .nothing, "a second cancellation finds nothing")
        XCTAssertEqual(state.release(1, broken: false), .resume(first, .connection(1)))
        XCTAssertEqual(state.release(1, broken: false), .resume(third, .connection(1)))
        XCTAssertEqual(state.open, 1)
    }

    /// The waiter is granted the connection before its cancellation handler runs: the handler finds nothing, the
    /// caller passes the connection on (as the pool does), and the next waiter gets it.
    func testACancellationThatLosesTheRaceToAGrantLosesNothing() {
        var state = State(maximumConnections: 1)
        XCTAssertEqual(state.acquire(), .slot)
        let cancelled = enqueue(&state)
        let next = enqueue(&state)
        XCTAssertEqual(state.release(1, broken: false), .resume(cancelled, .connection(1)))
        XCTAssertEqual(state.cancel(waiterID: cancelled), .nothing)
        XCTAssertEqual(state.release(1, broken: false), .resume(next, .connection(1)))
        XCTAssertEqual(state.open, 1)

        // The same with a slot: a broken connection's slot is granted, then the grantee's task is cancelled.
        let third = enqueue(&state)
        let fourth = enqueue(&state)
        XCTAssertEqual(state.release(1, broken: true), .close(1, passSlotTo: third))
        XCTAssertEqual(state.cancel(waiterID: third), .nothing)
        XCTAssertEqual(state.giveUpSlot(), .resume(fourth, .slot))
        XCTAssertEqual(state.open, 1)
        XCTAssertEqual(state.giveUpSlot(), .nothing)
        XCTAssertEqual(state.open, 0)
    }

    /// The cancellation handler runs before the caller queues: it finds nothing, and the caller, seeing its task
    /// cancelled under the lock, takes nothing.
    func testACancellationBeforeQueueingTakesNothing() {
        var state = State(maximumConnections: 1)
        XCTAssertEqual(state.acquire(), .slot)
        XCTAssertNil(state.acquire())
        let id = state.nextWaiterID()
        XCTAssertEqual(state.cancel(waiterID: id), .nothing)
        XCTAssertEqual(state.release(1, broken: false), .nothing)
        XCTAssertEqual(state.enqueue(id, id: id, taskCancelled: true), .resume(id, .cancelled))
        XCTAssertEqual(state.idle, [1], "the idle connection stays for the next caller")
        XCTAssertEqual(state.waiters.count, 0)
    }

    func testShutdownResumesEveryWaiterAndClosesIdleConnections() {
        var state = State(maximumConnections: 3)
        for _ in 0..<3 { XCTAssertEqual(state.acquire(), .slot) }
        XCTAssertEqual(state.release(1, broken: false), .nothing)
        XCTAssertEqual(state.release(2, broken: false), .nothing)
        XCTAssertEqual(state.acquire(), .connection(2))
        XCTAssertEqual(state.acquire(), .connection(1))
        let first = enqueue(&state)
        let second = enqueue(&state)
        XCTAssertEqual(state.release(1, broken: false), .resume(first, .connection(1)))
        let third = enqueue(&state)
        XCTAssertEqual(state.shutdown(), .shutDown(waiters: [second, third], idle: []))
        XCTAssertEqual(state.open, 3, "lent connections are still counted")

        var idle = State(maximumConnections: 2)
        XCTAssertEqual(idle.acquire(), .slot)
        XCTAssertEqual(idle.acquire(), .slot)
        XCTAssertEqual(idle.release(1, broken: false), .nothing)
        XCTAssertEqual(idle.release(2, broken: false), .nothing)
        XCTAssertEqual(idle.shutdown(), .shutDown(waiters: [], idle: [1, 2]))
        XCTAssertEqual(idle.open, 0)
        XCTAssertEqual(idle.idle, [])
    }

    func testAfterShutdownCallersAreRefusedAndReturnedConnectionsClosed() {
        var state = State(maximumConnections: 2)
        XCTAssertEqual(state.acquire(), .slot)
        XCTAssertEqual(state.acquire(), .slot)
        XCTAssertEqual(state.shutdown(), .shutDown(waiters: [], idle: []))
        XCTAssertEqual(state.acquire(), .closed)
        let id = state.nextWaiterID()
        XCTAssertEqual(state.enqueue(id, id: id, taskCancelled: false), .resume(id, .closed))
        XCTAssertEqual(state.release(1, broken: false), .close(1, passSlotTo: nil))
        XCTAssertEqual(state.giveUpSlot(), .nothing, "a slot whose open failed after shutdown is freed")
        XCTAssertEqual(state.open, 0)
        XCTAssertEqual(state.idle, [])
        XCTAssertEqual(state.shutdown(), .shutDown(waiters: [], idle: []), "a second shutdown does nothing")
    }

    /// Random interleavings of every event, as the pool's callers, cancellation handlers and deadlines produce them, with a
    /// model of what each caller holds; the invariants are checked after every step.
    func testRandomEventsKeepTheInvariants() {
        for seed in 1...200 as ClosedRange<UInt64> {
            var model = Model(maximumConnections: Int(seed % 4) + 1, seed: seed)
            for step in 0..<400 {
                model.step(allowShutdown: step > 300)
                if let failure = model.failure {
                    XCTFail("seed \(seed), step \(step): \(failure)")
                    return
                }
            }
            model.drain()
            if let failure = model.failure {
                XCTFail("seed \(seed), draining: \(failure)")
                return
            }
        }
    }
}

/// SplitMix64: a small generator whose sequence depends only on its seed.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The pool's callers around a `PoolState`: each caller asks, may wait, is woken with its grant, opens a
/// connection in a slot (or fails to), uses the connection and returns it (broken or not); any task may be
/// cancelled at any point. It does what the pool does with each action and records what everyone holds.
private struct Model {
    var state: PoolState<Int, Int>
    var random: SeededGenerator
    /// Connections lent to callers.
    var lent: Set<Int> = []
    /// Callers opening a connection in a slot.
    var opening = 0
    /// Callers that took an id and have not queued yet; true when their task was cancelled meanwhile.
    var registered: [Int: Bool] = [:]
    /// Waiters in the pool's queue, in the order they queued.
    var queued: [Int] = []
    /// Waiters resumed and not yet running, with what they were given and whether their task was cancelled.
    var woken: [Int: (grant: PoolGrant<Int>, cancelled: Bool)] = [:]
    var lastConnection = 0
    var failure: String?

    init(maximumConnections: Int, seed: UInt64) {
        state = PoolState(maximumConnections: maximumConnections)
        random = SeededGenerator(state: seed)
    }

    mutating func step(allowShutdown: Bool) {
        switch Int.random(in: 0..<10, using: &random) {
        case 0, 1:
            ask()
        case 2:
            if let id = registered.keys.randomElement(using: &random) { enqueue(id) }
        case 3:
            if let id = (Array(registered.keys) + queued + Array(woken.keys)).randomElement(using: &random) {
                cancel(id)
            }
        case 4:
            if let id = woken.keys.randomElement(using: &random) { wake(id) }
        case 5:
            if opening > 0 {
                opening -= 1
                if Bool.random(using: &random) {
                    lastConnection += 1
                    lent.insert(lastConnection)
                } else {
                    perform(state.giveUpSlot())
                }
            }
        case 8:
            if let id = (queued + Array(woken.keys)).randomElement(using: &random) { timeOut(id) }
        case 6, 7:
            if let connection = lent.randomElement(using: &random) {
                lent.remove(connection)
                perform(state.release(connection, broken: Int.random(in: 0..<5, using: &random) == 0))
            }
        default:
            if allowShutdown && Int.random(in: 0..<20, using: &random) == 0 { perform(state.shutdown()) }
        }
        check()
    }

    /// Lets every caller finish, returns every connection and shuts down: nothing is left open.
    mutating func drain() {
        while failure == nil, !(registered.isEmpty && queued.isEmpty && woken.isEmpty && lent.isEmpty && opening == 0) {
            if let id = registered.keys.first {
                enqueue(id)
            } else if let id = woken.keys.first {
                wake(id)
            } else if opening > 0 {
                opening -= 1
                lastConnection += 1
                lent.insert(lastConnection)
            } else if let connection = lent.first {
                lent.remove(connection)
                perform(state.release(connection, broken: false))
            } else if let id = queued.first {
                cancel(id)
            } else {
                fail("no caller can make progress")
            }
            check()
        }
        perform(state.shutdown())
        check()
        if state.open != 0 || !state.idle.isEmpty || !state.waiters.isEmpty {
            fail("after draining and shutdown: open \(state.open), idle \(state.idle), waiting \(state.waiters.count)")
        }
    }

    private mutating func ask() {
        switch state.acquire() {
        case .connection(let connection): lent.insert(connection)
        case .slot: opening += 1
        case .closed: break
        case .cancelled, .timedOut: fail("acquire answered a waiter's grant")
        case nil: registered[state.nextWaiterID()] = false
        }
    }

    /// A caller that took an id queues, or is resumed at once.
    private mutating func enqueue(_ id: Int) {
        let cancelled = registered.removeValue(forKey: id)!
        let queue = state.waiters.map(\.id)
        let action = state.enqueue(id, id: id, taskCancelled: cancelled)
        switch action {
        case .nothing:
            if cancelled { fail("a cancelled caller queued") }
            queued.append(id)
        case .resume(id, let grant):
            if !queue.isEmpty, grant != .cancelled, grant != .closed {
                fail("caller \(id) was given \(grant) ahead of the queue \(queue)")
            }
            if cancelled && grant != .cancelled { fail("a cancelled caller was given \(grant)") }
            woken[id] = (grant, cancelled)
        default:
            fail("enqueueing \(id) gave \(action)")
        }
    }

    private mutating func cancel(_ id: Int) {
        if registered[id] != nil {
            registered[id] = true
            expectNothing(state.cancel(waiterID: id), "cancelling a caller not yet queued")
        } else if let index = queued.firstIndex(of: id) {
            let action = state.cancel(waiterID: id)
            guard case .resume(id, .cancelled) = action else {
                return fail("cancelling queued waiter \(id) gave \(action)")
            }
            queued.remove(at: index)
        } else if woken[id] != nil {
            woken[id]!.cancelled = true
            expectNothing(state.cancel(waiterID: id), "cancelling a waiter already granted")
        }
    }

    /// A waiter's deadline passes (`connectionWaitTimeout`): a queued waiter leaves the queue with `.timedOut`; one
    /// already granted something keeps it (its timer finds nothing).
    private mutating func timeOut(_ id: Int) {
        if let index = queued.firstIndex(of: id) {
            let action = state.timeOut(waiterID: id)
            guard case .resume(id, .timedOut) = action else {
                return fail("the deadline of queued waiter \(id) gave \(action)")
            }
            queued.remove(at: index)
        } else if woken[id] != nil {
            expectNothing(state.timeOut(waiterID: id), "the deadline of a waiter already granted")
        }
    }

    /// A resumed waiter runs: it takes what it was given, or, its task cancelled, passes it on as the pool does.
    private mutating func wake(_ id: Int) {
        let (grant, cancelled) = woken.removeValue(forKey: id)!
        switch grant {
        case .connection(let connection):
            if cancelled { perform(state.release(connection, broken: false)) } else { lent.insert(connection) }
        case .slot:
            if cancelled { perform(state.giveUpSlot()) } else { opening += 1 }
        case .closed, .cancelled, .timedOut:
            break
        }
    }

    private mutating func perform(_ action: PoolState<Int, Int>.Action) {
        switch action {
        case .nothing:
            break
        case .resume(let id, let grant):
            if grant == .closed || grant == .cancelled { fail("waiter \(id) resumed with \(grant) by an event") }
            serveFirst(id, grant)
        case .close(let connection, let id):
            if lent.contains(connection) || state.idle.contains(connection) {
                fail("connection \(connection) closed while still in use")
            }
            if let id { serveFirst(id, .slot) }
        case .shutDown(let waiters, let idle):
            for connection in idle where lent.contains(connection) { fail("idle \(connection) is lent") }
            if waiters != queued { fail("shutdown resumed \(waiters), expected \(queued)") }
            for id in waiters { woken[id] = (.closed, false) }
            queued.removeAll()
        }
    }

    /// The pool gives a connection or a slot to a waiter: the first in the queue.
    private mutating func serveFirst(_ id: Int, _ grant: PoolGrant<Int>) {
        guard queued.first == id else { return fail("waiter \(id) served, but the queue is \(queued)") }
        queued.removeFirst()
        if case .connection(let connection) = grant, lent.contains(connection) {
            fail("connection \(connection) lent twice")
        }
        woken[id] = (grant, false)
    }

    private mutating func expectNothing(_ action: PoolState<Int, Int>.Action, _ what: String) {
        if action != .nothing { fail("\(what) gave \(action)") }
    }

    private mutating func check() {
        var grantedConnections = 0
        var grantedSlots = 0
        for (grant, _) in woken.values {
            if case .connection = grant { grantedConnections += 1 }
            if case .slot = grant { grantedSlots += 1 }
        }
        let held = state.idle.count + lent.count + grantedConnections + opening + grantedSlots
        if state.open > state.maximumConnections { fail("open \(state.open) > maximum") }
        if state.idle.count + lent.count + grantedConnections > state.open { fail("more connections than open") }
        if held != state.open { fail("open \(state.open), but \(held) connections or slots are held") }
        if !state.waiters.isEmpty && !state.idle.isEmpty { fail("a caller waits while a connection is idle") }
        if state.closed && !state.idle.isEmpty { fail("connections kept idle after shutdown") }
        if !state.waiters.isEmpty && (state.closed || state.open < state.maximumConnections) {
            fail("a caller waits while a slot is free or the pool is closed")
        }
        if state.waiters.map(\.id) != queued { fail("queue \(state.waiters.map(\.id)), expected \(queued)") }
        if Set(state.idle).count != state.idle.count { fail("idle list \(state.idle) has duplicates") }
    }

    private mutating func fail(_ message: String) {
        if failure == nil { failure = message }
    }
}
