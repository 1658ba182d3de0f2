import Foundation
import XCTest

/// A SoftHSM2 token of its own for one test (SOFTHSM2_CONF pointing at a temporary token directory), driven by the
/// scripts in Keys/pkcs11 exactly as Keys/README.md tells operators to run them. SoftHSM2 and OpenSC's pkcs11-tool
/// must be installed (Debian: softhsm2, opensc; `.ci/run` installs them): without them the test fails.
struct SoftHSMToken {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"
    static let label = "token-vault-test"
    static let pin = "271828"
    /// Keys/pkcs11 in this checkout.
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Keys/pkcs11")

    let directory: URL

    typealias Output = CLIRunner.Output

    /// Makes the token directory, the configuration and the PIN file, and initializes the token.
    static func make() throws -> SoftHSMToken {
        for tool in ["/usr/bin/softhsm2-util", "/usr/bin/pkcs11-tool", module] {
            guard FileManager.default.fileExists(atPath: tool) else {
                XCTFail("\(tool) is missing: install softhsm2 and opensc (apt-get install -y softhsm2 opensc).")
                throw CocoaError(.fileNoSuchFile)
            }
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("softhsm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: directory.appendingPathComponent("tokens"), withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        let token = SoftHSMToken(directory: directory)
        try Data(
            "directories.tokendir = \(directory.path)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n".utf8
        ).write(to: token.configuration)
        try token.writePIN(pin, to: token.pinFile)
        let initialized = try token.run(
            "/usr/bin/softhsm2-util",
            ["--init-token", "--free", "--label", label, "--so-pin", "31415926", "--pin", pin])
        XCTAssertEqual(initialized.status, 0, initialized.stderr)
        return token
    }

    var configuration: URL { directory.appendingPathComponent("softhsm2.conf") }
    var pinFile: URL { directory.appendingPathComponent("pin") }

    func writePIN(_ pin: String, to url: URL) throws {
        try Data("\(pin)\n".utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: url.path)
    }

    /// The settings the scripts read, for a token runner's environment.
    var environment: [String: String] {
        [
            "SOFTHSM2_CONF": configuration.path, "PKCS11_MODULE": Self.module, "PKCS11_TOKEN_LABEL": Self.label,
            "PKCS11_PIN_FILE": pinFile.path,
        ]
    }

    /// The path of a script in Keys/pkcs11.
    static func script(_ name: String) -> String { scripts.appendingPathComponent(name).path }

    /// Runs a program with the token's environment (plus `extra`), `stdin` on its standard input.
    func run(
        _ program: String, _ arguments: [String], stdin: Data = Data(), extra: [String: String] = [:]
    ) throws
        -> Output
    {
        try CLIRunner.run(
            URL(fileURLWithPath: program), arguments,
            environment: ["PATH": "/usr/bin:/bin"].merging(environment) { $1 }.merging(extra) { $1 }, stdin: stdin)
    }

    /// Runs a script of Keys/pkcs11.
    func script(
        _ name: String, _ arguments: [String], stdin: Data = Data(), extra: [String: String] = [:]
    ) throws
        -> Output
    {
        try run(Self.script(name), arguments, stdin: stdin, extra: extra)
    }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}
