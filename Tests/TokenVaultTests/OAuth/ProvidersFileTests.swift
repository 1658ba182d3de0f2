import Foundation
import TokenVault
import XCTest

/// `TOKEN_VAULT_PROVIDERS_FILE`, tried with mistakes: each is refused naming its line, never quoting a secret.
final class ProvidersFileTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("providers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    func write(_ text: String, mode: Int = 0o644, name: String = "providers.json") throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    /// Asserts that the file is refused with a message naming `line` and containing `words`.
    func assertRefused(
        _ text: String, line: Int?, _ words: String, mode: Int = 0o644, environment: [String: String] = [:],
        file: StaticString = #filePath, testLine: UInt = #line
    ) throws {
        let path = try write(text, mode: mode)
        XCTAssertThrowsError(
            try OAuthProvider.fromProvidersFile(path, environment: environment, variable: "TOKEN_VAULT_PROVIDERS_FILE"),
            file: file, line: testLine
        ) { error in
            let error = error as? VaultError
            XCTAssertEqual(error?.code, .providerConfiguration, file: file, line: testLine)
            let message = error?.message ?? ""
            if let line { XCTAssertTrue(message.contains(" line \(line): "), message, file: file, line: testLine) }
            XCTAssertTrue(message.contains(words), message, file: file, line: testLine)
            XCTAssertTrue(message.contains("TOKEN_VAULT_PROVIDERS_FILE"), message, file: file, line: testLine)
            XCTAssertFalse(message.contains("s3cr3t"), "never quotes a secret: \(message)", file: file, line: testLine)
        }
    }

    func testAValidFileDescribesAnyProvider() throws {
        let secretFile = try write("s3cr3t-from-file\n", mode: 0o600, name: "secret")
        let path = try write(
            """
            {
              "providers": [
                {
                  "name": "google",
                  "token_url": "https://oauth2.googleapis.com/token",
                  "authorization_url": "https://accounts.google.com/o/oauth2/v2/auth",
                  "revocation_url": "https://oauth2.googleapis.com/revoke",
                  "client_id": "123.apps.googleusercontent.com",
                  "client_secret_file": "\(secretFile)",
                  "authorization_parameters": {"access_type": "offline", "prompt": "consent"},
                  "metadata_fields": ["token_type"]
                },
                {
                  "name": "microsoft",
                  "token_url": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
                  "authorization_url": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
                  "client_id": "00000000-0000-0000-0000-000000000000",
                  "client_secret_env": "MS_SECRET",
                  "client_authentication": "basic",
                  "refresh_rate_limit": {"count": 20, "window": 600}
                }
              ]
            }
            """)
        let providers = try OAuthProvider.fromProvidersFile(path, environment: ["MS_SECRET": "s3cr3t-env"])
        XCTAssertEqual(providers.map(\.name), ["google", "microsoft"])
        XCTAssertEqual(providers[0].clientSecret.reveal(), "s3cr3t-from-file")
        XCTAssertEqual(providers[0].authorizationParameters["access_type"], "offline")
        XCTAssertEqual(providers[0].scopeSeparator, " ")
        XCTAssertEqual(providers[0].metadataFields, ["token_type"])
        XCTAssertEqual(providers[0].revocationURL?.absoluteString, "https://oauth2.googleapis.com/revoke")
        XCTAssertTrue(providers[0].accountsServers.isEmpty)
        XCTAssertEqual(providers[1].clientSecret.reveal(), "s3cr3t-env")
        XCTAssertEqual(providers[1].refreshRateLimit, .init(count: 20, window: 600))
        XCTAssertNil(providers[1].revocationURL)
        XCTAssertEqual("\(providers[1].clientAuthentication)", "httpBasic")
    }

    func testSyntaxMistakesNameTheirLine() throws {
        try assertRefused(
            "{\n  \"providers\": [\n    {\"name\": \"a\"\n     \"token_url\": \"x\"}\n  ]\n}", line: 4, "missing comma")
        try assertRefused("{\n  \"providers\": [\n    {\"name\": \"a\",}\n  ]\n}", line: 3, "trailing comma")
        try assertRefused("{\n  \"providers\": [\n", line: 3, "unexpected end")
        try assertRefused("{\"providers\": [{\"name\": 'a'}]}", line: 1, "double quotes")
        try assertRefused("{\n\"providers\": [],\n\"providers\": []\n}", line: 3, "appears twice")
        try assertRefused("[]", line: 1, "JSON object")
        try assertRefused("{\n  \"provider\": []\n}", line: 2, "unknown field 'provider'")
        try assertRefused("{\"providers\": []}", line: 1, "non-empty array")
    }

    func testFieldMistakesNameTheirLine() throws {
        let head = "{\n  \"providers\": [\n    {\n      \"name\": \"idp\",\n"  // the provider's fields start on line 5
        let tail = "\n    }\n  ]\n}"
        let ok = "      \"client_id\": \"id\",\n      \"client_secret_env\": \"S\",\n"
        let env = ["S": "s3cr3t"]
        try assertRefused(
            head + ok + "      \"tokn_url\": \"https://idp.example/token\"" + tail, line: 7, "unknown field 'tokn_url'",
            environment: env)
        try assertRefused(
            head + ok + "      \"authorization_url\": \"https://idp.example/auth\"" + tail, line: 3, "no \"token_url\"",
            environment: env)
        try assertRefused(
            head + ok + "      \"token_url\": \"http://idp.example/token\"" + tail, line: 7, "https URL",
            environment: env)
        try assertRefused(
            head + ok + "      \"token_url\": 42" + tail, line: 7, "non-empty string, not a number", environment: env)
        let url = "      \"token_url\": \"https://idp.example/token\",\n"
        try assertRefused(
            head + url + ok + "      \"client_authentication\": \"header\"" + tail, line: 8, "\"body\" or \"basic\"",
            environment: env)
        try assertRefused(
            head + url + ok + "      \"metadata_fields\": [\"token_type\",\n \"refresh_token\"]" + tail, line: 9,
            "is a credential", environment: env)
        try assertRefused(
            head + url + ok + "      \"authorization_parameters\": {\"state\": \"x\"}" + tail, line: 8,
            "set by the vault", environment: env)
        try assertRefused(
            head + url + ok + "      \"refresh_rate_limit\": {\"count\": 0, \"window\": 600}" + tail, line: 8,
            "refresh_rate_limit", environment: env)
        try assertRefused(
            head + url + ok + "      \"scope_separator\": \";\"" + tail, line: 8, "scope_separator", environment: env)
        try assertRefused(
            head + url + "      \"client_id\": \"id\",\n      \"client_secret_env\": \"UNSET\"" + tail, line: 7,
            "UNSET, which is not set")
        try assertRefused(head + url + "      \"client_id\": \"id\"" + tail, line: 3, "exactly one of")
        try assertRefused(
            head + url + ok + "      \"client_secret\": \"s3cr3t\"" + tail, line: 3, "exactly one of", environment: env)
        let twice =
            "{\"providers\": [\n{\"name\": \"a\", \"token_url\": \"https://a.example\", \"client_id\": \"i\", \"client_secret_env\": \"S\"},\n{\"name\": \"a\", \"token_url\": \"https://a.example\", \"client_id\": \"i\", \"client_secret_env\": \"S\"}\n]}"
        try assertRefused(twice, line: 3, "already used on line 2", environment: env)
    }

    /// An inline secret only in a file that passes the key-file rule; a secret file must pass it too.
    func testSecretsInlineOrInFilesFollowTheKeyFileRule() throws {
        let inline =
            "{\"providers\": [{\"name\": \"a\", \"token_url\": \"https://a.example/t\", \"client_id\": \"i\",\n\"client_secret\": \"s3cr3t\"}]}"
        try assertRefused(inline, line: 2, "mode 0644", mode: 0o644)
        let path = try write(inline, mode: 0o600)
        XCTAssertEqual(
            try OAuthProvider.fromProvidersFile(path, environment: [:]).first?.clientSecret.reveal(), "s3cr3t")
        let open = try write("s3cr3t", mode: 0o644, name: "open-secret")
        try assertRefused(
            "{\"providers\": [{\"name\": \"a\", \"token_url\": \"https://a.example/t\", \"client_id\": \"i\",\n\"client_secret_file\": \"\(open)\"}]}",
            line: 2, "mode 0644")
        try assertRefused(
            "{\"providers\": [{\"name\": \"a\", \"token_url\": \"https://a.example/t\", \"client_id\": \"i\",\n\"client_secret_file\": \"/nonexistent/secret\"}]}",
            line: 2, "cannot read")
        XCTAssertThrowsError(try OAuthProvider.fromProvidersFile("/nonexistent/providers.json", environment: [:]))
    }

    func testTheEnvironmentAddsTheFilesProvidersAndRefusesAZohoNameTwice() throws {
        let path = try write(
            "{\"providers\": [{\"name\": \"zoho_crm\", \"token_url\": \"https://a.example/t\", \"client_id\": \"i\", \"client_secret_env\": \"S\"}]}"
        )
        let key = VaultKey.generate().exportBase64()
        var environment = ["TOKEN_VAULT_KEY": key, "TOKEN_VAULT_PROVIDERS_FILE": path, "S": "s3cr3t"]
        XCTAssertEqual(try VaultConfiguration.fromEnvironment(environment).providers.keys.sorted(), ["zoho_crm"])
        environment["ZOHO_CLIENT_ID"] = "1000.X"
        environment["ZOHO_CLIENT_SECRET"] = "x"
        XCTAssertThrowsError(try VaultConfiguration.fromEnvironment(environment)) { error in
            XCTAssertTrue((error as? VaultError)?.message.contains("configured twice") ?? false, "\(error)")
        }
    }
}
