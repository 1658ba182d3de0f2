import Foundation
import TokenVault
import XCTest

/// `token-vault keygen -- COMMAND`: the key goes only to the command's stdin; its stdout is keygen's.
final class KeygenWrapTests: XCTestCase {
    let cli = CLIRunner(databaseURL: "", key: nil)

    func testTheKeyGoesToTheCommandOnly() throws {
        let line = try cli.run(["keygen", "--", "/bin/sh", "-c", "wc -c; echo wrapped"])
        XCTAssertEqual(line.status, 0, line.stderr)
        XCTAssertEqual(line.stdout, "45\nwrapped\n", "the base64 line and a newline; nothing else printed")
        XCTAssertTrue(line.stderr.hasPrefix("token-vault: key "), line.stderr)
        let raw = try cli.run(["keygen", "--raw", "--", "/usr/bin/wc", "-c"])
        XCTAssertEqual(raw.stdout, "32\n", raw.stderr)
        // The key handed over is the key whose id keygen reports.
        let echoed = try cli.run(["keygen", "--", "/bin/cat"])
        let id = try VaultKey(base64: echoed.stdout).id.rawValue
        XCTAssertTrue(echoed.stderr.contains("key \(id) handed to `/bin/cat`"), echoed.stderr)
    }

    func testAFailingWrapCommandDiscardsTheKey() throws {
        for (command, expected) in [
            (["/bin/sh", "-c", "cat >/dev/null; echo 'kms: denied' >&2; exit 4"], "exited with status 4"),
            (["/bin/false"], "exited with status 1"),
            (["/no/such/wrapper"], "cannot run"),
        ] {
            let result = try cli.run(["keygen", "--"] + command)
            XCTAssertEqual(result.status, 69, result.stderr)
            XCTAssertTrue(result.stderr.contains(expected), result.stderr)
            XCTAssertTrue(result.stderr.contains("the new key was discarded"), result.stderr)
            XCTAssertFalse(result.stdout.contains("="), result.stdout)
        }
        let slow = try cli.run(
            ["keygen", "--", "/bin/sleep", "30"], extraEnvironment: ["TOKEN_VAULT_KEY_COMMAND_TIMEOUT": "0.5"])
        XCTAssertEqual(slow.status, 69, slow.stderr)
        XCTAssertTrue(slow.stderr.contains("did not finish within 0.5 s"), slow.stderr)
    }

    /// Printed, the key is one base64 line; a stdout that cannot take it (a full disk) fails with exit 74 and says
    /// so, instead of ending as if a key had been written.
    func testAPrintedKeyIsOneLineAndAFullStdoutFails() throws {
        let printed = try cli.run(["keygen"])
        XCTAssertEqual(printed.status, 0, printed.stderr)
        XCTAssertEqual(printed.stdout.utf8.count, 45)
        XCTAssertNoThrow(try VaultKey(base64: printed.stdout))
        let process = Process()
        process.executableURL = CLIRunner.binary
        process.arguments = ["keygen"]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/full"))
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 74, message)
        XCTAssertTrue(message.contains("could not write the key to stdout"), message)
    }

    func testRawNeedsACommand() throws {
        let result = try cli.run(["keygen", "--raw"])
        XCTAssertEqual(result.status, 64)
        XCTAssertEqual(result.stdout, "")
    }
}
