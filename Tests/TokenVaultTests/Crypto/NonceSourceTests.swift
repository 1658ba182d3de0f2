import Foundation
import XCTest

@_spi(Benchmarking) @testable import TokenVault

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
        final class Collected: @unchecked Sendable {  // @unchecked: guarded by `lock`
            let lock = NSLock()
            var nonces: [[UInt8]] = []
        }
        let collected = Collected()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            let mine = (0..<2000).map { _ in Self.draw() }
            collected.lock.withLock { collected.nonces.append(contentsOf: mine) }
        }
        XCTAssertEqual(collected.nonces.count, 16_000)
        XCTAssertEqual(Set(collected.nonces).count, collected.nonces.count)
    }

    #if os(Linux)
    func testTheVDSOGeneratorFallsBackWhenEveryStateIsBusy() {
        guard let generator = VDSOGetRandom(maximumStates: 1) else {
            // A kernel before 6.11: no vDSO function, and NonceSource knows it.
            XCTAssertFalse(NonceSource.usesVDSO)
            return
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
    /// memory in the child. Were it ordinary memory, parent and child would draw the same next bytes.
    func testAForkedChildDrawsDifferentBytesThanItsParent() {
        _ = Self.draw()  // the state this thread uses is seeded before the fork
        var pipeEnds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        var childBytes = [UInt8](repeating: 0, count: 32)
        let pid = childBytes.withUnsafeMutableBytes { buffer -> pid_t in
            let pid = fork()
            if pid == 0 {
                // The child: no allocation, no locks it might inherit held; draw, report, leave.
                NonceSource.fill(buffer)
                _ = write(pipeEnds[1], buffer.baseAddress, buffer.count)
                _exit(0)
            }
            return pid
        }
        XCTAssertGreaterThan(pid, 0)
        let parentBytes = Self.draw(32)
        var received = [UInt8](repeating: 0, count: 32)
        let count = received.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(pipeEnds[0])
        close(pipeEnds[1])
        XCTAssertEqual(count, 32)
        XCTAssertNotEqual(received, [UInt8](repeating: 0, count: 32))
        XCTAssertNotEqual(received, parentBytes, "the child continued from its parent's generator state")
        _ = childBytes
    }
    #endif
}
