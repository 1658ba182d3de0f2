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
    /// memory in the child. Were it ordinary memory, parent and child would draw the same next bytes (the test
    /// fails that way when the state is mapped without the kernel's flags).
    func testAForkedChildDrawsDifferentBytesThanItsParent() throws {
        let generator = VDSOGetRandom.shared
        var pipeEnds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { close(pipeEnds[0]) }
        // The state this thread uses is seeded before the fork.
        var parentBytes = [UInt8](repeating: 0, count: 32)
        XCTAssertEqual(parentBytes.withUnsafeMutableBytes { generator?.fill($0) ?? true }, true)
        // The child's report: 32 bytes, then 1 when the vDSO path filled them.
        var report = [UInt8](repeating: 0, count: 33)
        let pid = report.withUnsafeMutableBytes { buffer -> pid_t in
            let pid = fork()
            if pid == 0 {
                // The child: no allocation, no lock it could inherit held; draw, report, leave.
                let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<32])
                if let generator {
                    buffer[32] = generator.fill(bytes) ? 1 : 0
                } else {
                    NonceSource.fill(bytes)
                }
                let written = write(pipeEnds[1], buffer.baseAddress, buffer.count)
                _exit(written == buffer.count ? 0 : 1)
            }
            return pid
        }
        close(pipeEnds[1])  // so that a child dying early ends the read below instead of blocking it
        guard pid > 0 else { return XCTFail("fork failed: errno \(errno)") }
        XCTAssertEqual(parentBytes.withUnsafeMutableBytes { generator?.fill($0) ?? true }, true)
        if generator == nil { parentBytes = Self.draw(32) }
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
        if generator != nil { XCTAssertEqual(received[32], 1, "the child did not draw through the vDSO") }
        XCTAssertNotEqual(Array(received[0..<32]), [UInt8](repeating: 0, count: 32))
        XCTAssertNotEqual(Array(received[0..<32]), parentBytes, "the child continued from its parent's state")
    }
    #endif
}
