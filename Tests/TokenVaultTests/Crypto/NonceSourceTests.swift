import Foundation
import Synchronization
import XCTest

@testable import TokenVault

#if canImport(Glibc)
import Glibc
#endif

final class NonceSourceTests: XCTestCase {
    private static func draw(_ count: Int = 24) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            buffer.initialize(repeating: 0)
            NonceSource.fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = count
        }
    }

    func testNoncesAreFullLengthAndNeverRepeat() {
        var seen = Set<[UInt8]>()
        for _ in 0..<10_000 {
            let nonce = Self.draw()
            XCTAssertEqual(nonce.count, 24)
            XCTAssertTrue(seen.insert(nonce).inserted, "a nonce repeated")
        }
        // Every byte position takes many values: nothing is left zero or fixed.
        for position in 0..<24 {
            XCTAssertGreaterThan(Set(seen.map { $0[position] }).count, 200, "byte \(position) barely varies")
        }
    }

    func testLargeAndEmptyFillsWork() {
        let large = Self.draw(24 * 4000)  // an import batch's worth
        XCTAssertGreaterThan(Set(large).count, 250)
        NonceSource.fill(UnsafeMutableRawBufferPointer(start: nil, count: 0))
    }

    func testConcurrentThreadsNeverShareANonce() {
        let collected = Mutex<[[UInt8]]>([])
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let mine = (0..<2000).map { _ in Self.draw() }
            collected.withLock { $0.append(contentsOf: mine) }
        }
        let nonces = collected.withLock { $0 }
        XCTAssertEqual(nonces.count, 16_000)
        XCTAssertEqual(Set(nonces).count, nonces.count)
    }

    #if os(Linux)
    func testTheVDSOGeneratorFallsBackWhenEveryStateIsBusy() throws {
        guard let generator = VDSOGetRandom(maximumStates: 1) else {
            XCTAssertFalse(NonceSource.usesVDSO)
            throw XCTSkip("this kernel has no vDSO getrandom (Linux 6.11+): there is no generator state to be busy")
        }
        XCTAssertTrue(NonceSource.usesVDSO)
        var bytes = [UInt8](repeating: 0, count: 48)
        XCTAssertTrue(bytes.withUnsafeMutableBytes { generator.fill($0) })
        XCTAssertNotEqual(bytes, [UInt8](repeating: 0, count: 48))
        // Held by another thread: the caller is told to use libsodium instead of waiting.
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            generator.holdState(0) {
                held.signal()
                release.wait()
            }
        }
        held.wait()
        XCTAssertFalse(bytes.withUnsafeMutableBytes { generator.fill($0) })
        release.signal()
    }

    /// A child process must not continue from its parent's generator state: the kernel wipes the vDSO state's
    /// memory in the child. Were it ordinary memory, parent and child would draw the same next bytes (the test
    /// fails that way when the state is mapped without the kernel's flags).
    func testAForkedChildDrawsDifferentBytesThanItsParentThroughTheVDSO() throws {
        guard let generator = VDSOGetRandom.shared else {
            XCTAssertFalse(NonceSource.usesVDSO)
            throw XCTSkip(
                "this kernel has no vDSO getrandom (Linux 6.11+); nonces come from libsodium, which "
                    + "testAForkedChildDrawsDifferentBytesThanItsParentThroughTheFallback covers")
        }
        try assertChildAndParentDiffer(expecting: .vdso) { NonceSource.fill($0, from: generator) }
    }

    /// Without the vDSO (an older kernel, or every state busy) nonces come from libsodium, which asks the kernel
    /// each time and keeps no state in the process: a forked child draws fresh bytes too. Runs on every kernel.
    func testAForkedChildDrawsDifferentBytesThanItsParentThroughTheFallback() throws {
        try assertChildAndParentDiffer(expecting: .libsodium) { NonceSource.fill($0, from: nil) }
    }

    /// Draws in the parent, forks, draws with `draw` in the child and in the parent again, and checks that the
    /// child's bytes are its own and came from `origin`.
    private func assertChildAndParentDiffer(
        expecting origin: NonceSource.Origin, _ draw: (UnsafeMutableRawBufferPointer) -> NonceSource.Origin
    ) throws {
        var pipeEnds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { close(pipeEnds[0]) }
        // The state this thread uses is seeded before the fork.
        var parentBytes = [UInt8](repeating: 0, count: 32)
        XCTAssertEqual(parentBytes.withUnsafeMutableBytes { draw($0) }, origin)
        // The child's report: 32 bytes, then 1 when they came from `origin`.
        var report = [UInt8](repeating: 0, count: 33)
        let pid = report.withUnsafeMutableBytes { buffer -> pid_t in
            let pid = fork()
            if pid == 0 {
                // The child: no allocation, no lock it could inherit held; draw, report, leave.
                buffer[32] = draw(UnsafeMutableRawBufferPointer(rebasing: buffer[0..<32])) == origin ? 1 : 0
                let written = write(pipeEnds[1], buffer.baseAddress, buffer.count)
                _exit(written == buffer.count ? 0 : 1)
            }
            return pid
        }
        close(pipeEnds[1])  // so that a child dying early ends the read below instead of blocking it
        guard pid > 0 else { return XCTFail("fork failed: errno \(errno)") }
        XCTAssertEqual(parentBytes.withUnsafeMutableBytes { draw($0) }, origin)
        var received = [UInt8](repeating: 0, count: 33)
        var count = 0
        while count < received.count {
            let chunk = received.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress! + count, $0.count - count) }
            if chunk <= 0 { break }
            count += chunk
        }
        var status: Int32 = 0
        XCTAssertEqual(waitpid(pid, &status, 0), pid)
        XCTAssertEqual(status, 0, "the child exited abnormally")
        XCTAssertEqual(count, 33, "the child's report is incomplete")
        XCTAssertEqual(received[32], 1, "the child's bytes did not come from \(origin)")
        XCTAssertNotEqual(Array(received[0..<32]), [UInt8](repeating: 0, count: 32))
        XCTAssertNotEqual(Array(received[0..<32]), parentBytes, "the child continued from its parent's state")
    }
    #endif
}
