import Foundation
import XCTest

@testable import TokenVault

/// The CLI holds keys and tokens in memory: it leaves them in no core file and lets no other process read them.
final class CLIProcessTests: XCTestCase {
    func testTheCLITurnsCoreDumpsOffForItself() throws {
        let process = Process()
        process.executableURL = CLIRunner.binary
        process.arguments = ["import"]  // waits for its standard input: alive while we look at it
        process.environment = [
            "PATH": "/usr/bin:/bin", "DATABASE_URL": "host=/nonexistent",
            "TOKEN_VAULT_KEY": VaultKey.generate().exportBase64(),
        ]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = Pipe()
        process.standardError = Pipe()
        try process.run()
        defer {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
        var limits = ""
        for _ in 0..<50 {  // until it has started and hardened itself
            limits = (try? String(contentsOfFile: "/proc/\(process.processIdentifier)/limits", encoding: .utf8)) ?? ""
            if let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max core file size") }),
                line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"]
            {
                return
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTFail("the CLI's core file size limit is not 0: \(limits)")
    }
}
