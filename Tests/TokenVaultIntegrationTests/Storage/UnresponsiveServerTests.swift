import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A server that accepts a TCP connection and then never answers (frozen, or behind a black hole) must give a
/// clear error in bounded time, not a hang: libpq waits forever unless told otherwise.
final class UnresponsiveServerTests: XCTestCase {
    /// A socket on 127.0.0.1 that listens and never accepts: the kernel completes the handshake, nothing replies.
    private func silentListener() throws -> (descriptor: Int32, port: UInt16) {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(descriptor, 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        XCTAssertEqual(bound, 0)
        XCTAssertEqual(listen(descriptor, 16), 0)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return (descriptor, UInt16(bigEndian: address.sin_port))
    }

    func testConnectingGivesUpAfterTheDefaultTimeoutOrTheConninfosOwn() throws {
        let (descriptor, port) = try silentListener()
        defer { close(descriptor) }
        for (conninfo, seconds) in [
            ("host=127.0.0.1 port=\(port) dbname=vault user=vault", 10.0),
            ("host=127.0.0.1 port=\(port) dbname=vault user=vault connect_timeout=2", 2.0),
        ] {
            var cli = CLIRunner(databaseURL: conninfo, key: nil)
            cli.environment["PGCONNECT_TIMEOUT"] = nil
            let started = Date()
            let result = try cli.run(["list"])
            let elapsed = Date().timeIntervalSince(started)
            XCTAssertEqual(result.status, 69, result.stderr)
            XCTAssertTrue(result.stderr.contains("cannot connect to PostgreSQL"), result.stderr)
            XCTAssertTrue(result.stderr.contains("timeout"), result.stderr)
            XCTAssertGreaterThanOrEqual(elapsed, seconds - 0.5, "\(conninfo)")
            XCTAssertLessThan(elapsed, seconds + 5, "\(conninfo): bounded by connect_timeout")
        }
    }
}
