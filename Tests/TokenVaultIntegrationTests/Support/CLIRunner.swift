import Foundation
import Synchronization
import TokenVault
import TokenVaultTesting
import XCTest

/// Runs the built `token-vault` binary, as an operator would.
struct CLIRunner {
    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    var environment: [String: String]

    /// The binary next to the test bundle (`swift build` puts both in the same folder).
    static var binary: URL {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let sibling = bundle.appendingPathComponent("token-vault")
        if FileManager.default.isExecutableFile(atPath: sibling.path) { return sibling }
        // swift test passes the .xctest bundle path; the products sit beside it.
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("token-vault")
    }

    init(databaseURL: String, key: String?) {
        var environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"]
        environment["DATABASE_URL"] = databaseURL
        if let key { environment["TOKEN_VAULT_KEY"] = key }
        self.environment = environment
    }

    /// A runner with a fresh key whose Zoho providers point at `endpoint` (a local token endpoint).
    init(databaseURL: String, zohoAt endpoint: FakeTokenEndpoint) {
        self.init(databaseURL: databaseURL, key: VaultKey.generate().exportBase64())
        environment["ZOHO_CLIENT_ID"] = endpoint.clientID
        environment["ZOHO_CLIENT_SECRET"] = endpoint.clientSecret
        environment["ZOHO_ACCOUNTS_URL"] = endpoint.baseURL.absoluteString
    }

    /// Starts the binary without waiting for it, its output on pipes, for tests that signal it mid-run. Read
    /// both pipes before `waitUntilExit()`.
    func start(_ arguments: [String]) throws -> (process: Process, stdout: Pipe, stderr: Pipe) {
        let errors = Pipe()
        let (process, output) = try Self.launch(
            "token-vault", arguments, environment: environment, standardError: errors)
        return (process, output, errors)
    }

    /// Starts `tool`, a binary built beside `token-vault`, with its standard output on a pipe.
    static func launch(
        _ tool: String, _ arguments: [String], environment: [String: String], standardError: Any
    ) throws -> (process: Process, stdout: Pipe) {
        let binary = binary.deletingLastPathComponent().appendingPathComponent(tool)
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("\(tool) is not built at \(binary.path); run `swift build` before `swift test`.")
            throw CocoaError(.fileNoSuchFile)
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        process.standardError = standardError
        try process.run()
        return (process, output)
    }

    func run(_ arguments: [String], stdin: String = "", extraEnvironment: [String: String] = [:]) throws -> Output {
        let binary = Self.binary
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("token-vault is not built at \(binary.path); run `swift build` before `swift test`.")
            throw CocoaError(.fileNoSuchFile)
        }
        return try Self.run(
            binary, arguments, environment: environment.merging(extraEnvironment) { $1 }, stdin: Data(stdin.utf8))
    }

    /// Runs `executable` to its end with `stdin` on its standard input; its status and both outputs.
    static func run(
        _ executable: URL, _ arguments: [String], environment: [String: String], stdin: Data
    ) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(stdin)
        try input.fileHandleForWriting.close()
        // Read both pipes concurrently so that neither fills up and blocks the child.
        let collected = LockedData()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            collected.set(errors: errors.fileHandleForReading.readDataToEndOfFile())
        }
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
            stderr: String(decoding: collected.errors, as: UTF8.self))
    }
}

final class LockedData: Sendable {
    private let stored = Mutex(Data())
    func set(errors: Data) { stored.withLock { $0 = errors } }
    var errors: Data { stored.withLock { $0 } }
}

/// Polls `countQuery` (a `SELECT count(*)`) every `interval` nanoseconds until it reads more than 0, or 20 seconds
/// have passed: for tests that wait for a running command to have done some work before they signal it.
func waitForPositiveCount(_ countQuery: String, url: String, interval: UInt64) async throws {
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
        let count = try await AdminSQL.query(countQuery, url: url)
        if Int(count.first?[0] ?? "0") ?? 0 > 0 { return }
        try? await Task.sleep(nanoseconds: interval)
    }
}

/// A test case with a fresh database, a local Zoho token endpoint, and a CLI runner pointed at both (not migrated).
class LocalZohoCLITestCase: XCTestCase {
    var database: TestDatabase!
    var endpoint: FakeTokenEndpoint!
    var cli: CLIRunner!

    override func setUp() async throws {
        database = try await TestDatabase.create()
        endpoint = try FakeTokenEndpoint.start()
        cli = CLIRunner(databaseURL: database.url, zohoAt: endpoint)
    }

    override func tearDown() async throws {
        endpoint.stop()
        await database.drop()
    }
}
