import Foundation
import TokenVault
import TokenVaultCommandSupport
import XCTest

/// Key commands run against real programs (shell scripts written per test): failing, slow, noisy and hostile ones.
/// Whatever a program prints on stdout must never appear in an error.
final class KeyCommandTests: XCTestCase {
    var directory: URL!
    /// A key no error may ever show: every hostile program prints it on stdout.
    let secretKey = VaultKey.generate().exportBase64()

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("key-command-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes an executable `/bin/sh` script and returns its path.
    func program(_ name: String, _ body: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data("#!/bin/sh\n\(body)\n".utf8).write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: url.path)
        return url.path
    }

    func run(_ commandLine: String, timeout: Double = 5) throws(VaultError) -> Secret {
        try KeyCommand.run(
            commandLine, variable: Keyring.Variable.keyCommand,
            environment: ["PATH": "/usr/bin:/bin", "SECRET_KEY": secretKey], timeout: timeout)
    }

    /// The error `commandLine` fails with, checked to be a `.keyConfiguration` error that shows no stdout.
    func failure(
        _ commandLine: String, timeout: Double = 5, file: StaticString = #filePath, line: UInt = #line
    )
        -> VaultError?
    {
        do {
            _ = try run(commandLine, timeout: timeout)
            XCTFail("\(commandLine) succeeded", file: file, line: line)
            return nil
        } catch {
            XCTAssertEqual(error.code, .keyConfiguration, file: file, line: line)
            XCTAssertFalse(error.message.contains(secretKey), error.message, file: file, line: line)
            XCTAssertFalse(error.message.contains(String(secretKey.prefix(16))), error.message, file: file, line: line)
            XCTAssertFalse(error.message.contains("STDOUT-MARKER"), error.message, file: file, line: line)
            return error
        }
    }

    func testAKeyFromACommand() throws {
        let path = try program("good", "printf '%s\\n' \"$SECRET_KEY\"")
        let output = try run(path)
        let key = try VaultKey(base64Encoded: output)
        XCTAssertEqual(key, try VaultKey(base64: secretKey))
    }

    func testArgumentsAreWordsWithoutAShell() throws {
        let path = try program(
            "args",
            "[ \"$1\" = 'a b' ] && [ \"$2\" = '$HOME' ] && [ \"$3\" = \"x'y\" ] && printf '%s\\n' \"$SECRET_KEY\"")
        XCTAssertNoThrow(try run("\(path) 'a b' '$HOME' x\\'y"))
        for line in ["\(path) | base64", "\(path) > out", "\(path) $HOME", "\(path) `id`", "\(path) 'open", ""] {
            XCTAssertNotNil(failure(line), line)
        }
    }

    func testAFailingProgramIsQuotedFromStderrOnly() throws {
        let path = try program(
            "fails",
            """
            printf '%s\\n' "$SECRET_KEY" STDOUT-MARKER
            echo "kms: AccessDeniedException: not allowed to use key alias/token-vault" >&2
            exit 3
            """)
        let error = try XCTUnwrap(failure(path))
        XCTAssertTrue(error.message.contains("exited with status 3"), error.message)
        XCTAssertTrue(
            error.message.contains("AccessDeniedException: not allowed to use key alias/token-vault"), error.message)
    }

    func testStderrThatRepeatsStdoutOrLooksLikeAKeyIsWithheld() throws {
        let repeats = try program(
            "repeats", "printf '%s\\n' \"$SECRET_KEY\"; printf 'oops %s\\n' \"$SECRET_KEY\" >&2; exit 1")
        let error = try XCTUnwrap(failure(repeats))
        XCTAssertTrue(error.message.contains("withheld"), error.message)
        let lines = try program(
            "lines",
            "printf '# old keys\\n%s\\nSTDOUT-MARKER-2\\n' \"$SECRET_KEY\"; echo 'bad STDOUT-MARKER-2 here' >&2; exit 1"
        )
        XCTAssertTrue(try XCTUnwrap(failure(lines)).message.contains("withheld"), "any line of stdout counts")
        let other = VaultKey.generate().exportBase64()
        let looksLikeAKey = try program("looks", "echo 'the key is \(other)' >&2; echo 'second line' >&2; exit 1")
        let second = try XCTUnwrap(failure(looksLikeAKey))
        XCTAssertFalse(second.message.contains(other), second.message)
        XCTAssertTrue(second.message.contains("second line"), second.message)
    }

    func testNoisyStderrIsBounded() throws {
        let path = try program(
            "noisy",
            "printf '%s\\n' \"$SECRET_KEY\"; i=0; while [ $i -lt 20000 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; exit 2"
        )
        let error = try XCTUnwrap(failure(path))
        XCTAssertLessThan(error.message.count, 1200, error.message)
        XCTAssertTrue(error.message.contains("noise line 19999"), "the end of stderr is quoted")
    }

    func testTooMuchOutputIsRefusedAndTheProgramKilled() throws {
        let started = ContinuousClock.now
        let error = try XCTUnwrap(failure("/usr/bin/yes STDOUT-MARKER"))
        XCTAssertTrue(error.message.contains("more than 64 KiB"), error.message)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(3))
    }

    func testASlowProgramAndItsChildrenAreKilledAtTheTimeout() throws {
        let pidFile = directory.appendingPathComponent("child.pid").path
        let path = try program(
            "slow", "printf '%s\\n' \"$SECRET_KEY\"; sleep 60 & echo $! > \(pidFile); sleep 60")
        let started = ContinuousClock.now
        let error = try XCTUnwrap(failure(path, timeout: 0.5))
        let took = ContinuousClock.now - started
        XCTAssertTrue(error.message.contains("did not finish within 0.5 s"), error.message)
        XCTAssertLessThan(took, .seconds(3), "killed at the timeout")
        let child = try XCTUnwrap(
            Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        usleep(100_000)
        // Gone, or a zombie waiting for whoever reaps orphans (this machine's init may be slow to).
        let state = (try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8))?.split(separator: " ")
        XCTAssertTrue(state == nil || state?[2] == "Z", "the program's own child was killed with its process group")
    }

    func testAProgramThatClosesStdoutButKeepsRunningTimesOut() throws {
        let path = try program("lingers", "printf '%s\\n' \"$SECRET_KEY\"; exec >&- 2>&-; sleep 60")
        let error = try XCTUnwrap(failure(path, timeout: 0.5))
        XCTAssertTrue(error.message.contains("did not finish"), error.message)
    }

    func testAProgramKilledBySignalOrIgnoringTermIsReported() throws {
        let signalled = try program("signalled", "printf '%s\\n' \"$SECRET_KEY\"; kill -9 $$")
        XCTAssertTrue(try XCTUnwrap(failure(signalled)).message.contains("killed by signal 9"))
        let stubborn = try program(
            "stubborn", "trap '' TERM INT HUP; printf '%s\\n' \"$SECRET_KEY\"; while :; do sleep 1; done")
        XCTAssertTrue(try XCTUnwrap(failure(stubborn, timeout: 0.3)).message.contains("did not finish"))
    }

    func testAMissingOrUnrunnableProgram() throws {
        XCTAssertTrue(try XCTUnwrap(failure("no-such-program-\(UUID().uuidString)")).message.contains("cannot run"))
        let notExecutable = directory.appendingPathComponent("plain").path
        try Data("x".utf8).write(to: URL(fileURLWithPath: notExecutable))
        XCTAssertTrue(try XCTUnwrap(failure(notExecutable)).message.contains("cannot run"))
    }

    func testMalformedOutputIsDescribedNeverShown() throws {
        let cases = [
            ("printf 'STDOUT-MARKER-not-a-key\\n'", "not valid standard base64"),
            ("head -c 16 /dev/urandom | base64", "decodes to 16 bytes, not 32"),
            ("printf ''", "is empty"),
            ("head -c 200 /dev/urandom", "not valid standard base64"),
        ]
        for (index, (body, expected)) in cases.enumerated() {
            let path = try program("malformed\(index)", body)
            let output = try run(path)
            do {
                _ = try VaultKey(base64Encoded: output, name: "the output of \(Keyring.Variable.keyCommand)")
                XCTFail("\(body) gave a key")
            } catch {
                XCTAssertTrue(error.message.contains(expected), error.message)
                XCTAssertFalse(error.message.contains("STDOUT-MARKER"), error.message)
            }
        }
    }

    func testTheKeyringFromCommandsWithSources() throws {
        let previous = [VaultKey.generate().exportBase64(), VaultKey.generate().exportBase64()]
        let current = try program("current", "printf '%s\\n' \"$SECRET_KEY\"")
        let old = try program("old", "printf '# retired 2025\\n%s\\n\\n%s\\n' '\(previous[0])' '\(previous[1])'")
        let environment = [
            "PATH": "/usr/bin:/bin", "SECRET_KEY": secretKey, Keyring.Variable.keyCommand: current,
            Keyring.Variable.previousKeysCommand: old,
        ]
        let loaded = try CLI.loadKeys(environment)
        XCTAssertEqual(loaded.keyring.current, try VaultKey(base64: secretKey))
        XCTAssertEqual(loaded.keyring.previous, try previous.map { try VaultKey(base64: $0) })
        XCTAssertEqual(loaded.sources[loaded.keyring.current.id], Keyring.Variable.keyCommand)
        XCTAssertEqual(
            loaded.sources[loaded.keyring.previous[1].id], "\(Keyring.Variable.previousKeysCommand), key 2")
    }

    func testExactlyOneSourceAndTheCurrentKeyNeverAmongThePrevious() throws {
        let current = try program("current", "printf '%s\\n' \"$SECRET_KEY\"")
        let file = directory.appendingPathComponent("key").path
        try Data(secretKey.utf8).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        var environment = [
            "PATH": "/usr/bin:/bin", "SECRET_KEY": secretKey, Keyring.Variable.keyCommand: current,
            Keyring.Variable.keyFile: file,
        ]
        XCTAssertThrowsError(try CLI.loadKeys(environment)) { error in
            XCTAssertTrue("\(error)".contains("set exactly one source"), "\(error)")
        }
        environment[Keyring.Variable.keyFile] = nil
        environment[Keyring.Variable.previousKeysCommand] = current
        XCTAssertThrowsError(try CLI.loadKeys(environment)) { error in
            XCTAssertTrue("\(error)".contains("also appears among the previous keys"), "\(error)")
        }
        // The library alone runs no program.
        XCTAssertThrowsError(try Keyring.fromEnvironment([Keyring.Variable.keyCommand: current])) { error in
            XCTAssertTrue("\(error)".contains("runs no program"), "\(error)")
        }
    }

    func testTheVaultsOtherSecretsAreNotInherited() throws {
        let path = try program(
            "env",
            """
            [ -z "$DATABASE_URL$TOKEN_VAULT_KEY$TOKEN_VAULT_PREVIOUS_KEYS$ZOHO_CLIENT_SECRET$PGPASSWORD" ] || exit 9
            [ "$KMS_REGION" = eu ] || exit 8
            printf '%s\\n' "$SECRET_KEY"
            """)
        let environment = [
            "PATH": "/usr/bin:/bin", "SECRET_KEY": secretKey, "KMS_REGION": "eu", Keyring.Variable.keyCommand: path,
            "DATABASE_URL": "postgresql://u:pw@h/db", Keyring.Variable.previousKeys: VaultKey.generate().exportBase64(),
            "ZOHO_CLIENT_SECRET": "s", "PGPASSWORD": "pw",
        ]
        XCTAssertNoThrow(try CLI.loadKeys(environment))
    }

    /// A providers file's `client_secret_env` names a client secret as much as ZOHO_CLIENT_SECRET does.
    func testAProvidersFilesSecretVariableIsNotInherited() throws {
        let providers = directory.appendingPathComponent("providers.json").path
        try Data(
            """
            {"providers": [{"name": "google", "token_url": "https://oauth2.googleapis.com/token",
              "client_id": "id", "client_secret_env": "GOOGLE_CLIENT_SECRET"}]}
            """.utf8
        ).write(to: URL(fileURLWithPath: providers))
        let path = try program(
            "env", "[ -z \"$GOOGLE_CLIENT_SECRET\" ] || exit 9\nprintf '%s\\n' \"$SECRET_KEY\"")
        let environment = [
            "PATH": "/usr/bin:/bin", "SECRET_KEY": secretKey, Keyring.Variable.keyCommand: path,
            "TOKEN_VAULT_PROVIDERS_FILE": providers, "GOOGLE_CLIENT_SECRET": "google-client-secret",
        ]
        XCTAssertNoThrow(try CLI.loadKeys(environment), "the key command saw GOOGLE_CLIENT_SECRET")
    }

    /// Through the built binary, as an operator meets it: one line on stderr, exit 78, nothing of stdout anywhere.
    func testTheCLIReportsAHostileCommandWithoutItsOutput() throws {
        let hostile = try program(
            "hostile",
            """
            printf '%s\n' "$SECRET_KEY" STDOUT-MARKER
            printf '%s\n' "$SECRET_KEY" >&2
            printf 'permission denied\033[2J\n' >&2
            exit 5
            """)
        var cli = CLIRunner(databaseURL: "postgresql://127.0.0.1:1/none", key: nil)
        cli.environment["SECRET_KEY"] = secretKey
        cli.environment[Keyring.Variable.keyCommand] = hostile
        for command in [["verify"], ["keys", "--json"], ["migrate"], ["list"]] {
            let result = try cli.run(command)
            XCTAssertEqual(result.status, 78, "\(command): \(result.stderr)")
            XCTAssertEqual(result.stdout, "")
            XCTAssertTrue(result.stderr.hasPrefix("token-vault: error: TOKEN_VAULT_KEY_COMMAND: "), result.stderr)
            XCTAssertTrue(result.stderr.contains("exited with status 5"), result.stderr)
            XCTAssertFalse(result.stderr.contains(secretKey), result.stderr)
            XCTAssertFalse(result.stderr.contains("STDOUT-MARKER"), result.stderr)
            XCTAssertFalse(result.stderr.contains("\u{1B}"), "terminal escapes are shown escaped")
            XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, "one line")
        }
    }

    func testTheTimeoutSetting() throws {
        XCTAssertEqual(try KeyCommand.timeout([:]), 30)
        XCTAssertEqual(try KeyCommand.timeout([KeyCommand.timeoutVariable: "2.5"]), 2.5)
        for bad in ["0", "-1", "601", "soon"] {
            XCTAssertThrowsError(try KeyCommand.timeout([KeyCommand.timeoutVariable: bad]), bad)
        }
    }
}
