import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A network partition that happens after the connection is made, in a box: a Unix socket that passes a
/// PostgreSQL connection's start-up through to the real server, then swallows the client's first statement and
/// never answers, keeping the connection open (as a peer whose kernel still acknowledges, which keepalives cannot
/// tell from a slow server). Connect with `host=<directory> port=5432`.
final class SilentProxy: Sendable {
    /// The socket directory (the socket is `.s.PGSQL.5432` in it).
    let directory: String
    private let listener: Int32
    private let target: String
    /// Every socket opened, to be shut down by `stop()`.
    private let sockets = Mutex<[Int32]>([])

    /// Forwards to the server socket `target` (a path such as `/tmp/…/.s.PGSQL.5432`).
    init(forwardingTo target: String) throws {
        var template = Array("/tmp/token-vault-proxy-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
        directory = String(cString: made)
        self.target = target
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0, Self.withAddress("\(directory)/.s.PGSQL.5432", { bind(listener, $0, $1) }) == 0,
            listen(listener, 16) == 0
        else { throw POSIXError(.EIO) }
        sockets.withLock { $0.append(listener) }
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// Closes every connection and the listener, and deletes the directory.
    func stop() {
        for socket in sockets.withLock({ $0 }) { shutdown(socket, Int32(SHUT_RDWR)) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            let server = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            sockets.withLock { $0 += [client, server] }
            guard Self.withAddress(target, { connect(server, $0, $1) }) == 0 else {
                close(client)
                continue
            }
            let swallowing = Atomic<Bool>(false)
            Thread.detachNewThread {
                // The first read is the start-up packet; whatever the client sends after it is a statement.
                var first = true
                Self.pump(from: client) { bytes in
                    if first {
                        first = false
                        return Self.write(bytes, to: server)
                    }
                    swallowing.store(true, ordering: .relaxed)
                    return true
                }
            }
            Thread.detachNewThread {
                Self.pump(from: server) { bytes in
                    swallowing.load(ordering: .relaxed) ? true : Self.write(bytes, to: client)
                }
            }
        }
    }

    /// Reads `socket` until it ends, handing each chunk to `body` (false stops).
    private static func pump(from socket: Int32, _ body: ([UInt8]) -> Bool) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(socket, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 || !body(Array(buffer[0..<count])) { return }
        }
    }

    private static func write(_ bytes: [UInt8], to socket: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(socket, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    private static func withAddress(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8CString)
        guard bytes.count <= MemoryLayout.size(ofValue: address.sun_path) else { return -1 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            bytes.withUnsafeBytes { raw.copyMemory(from: $0) }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
