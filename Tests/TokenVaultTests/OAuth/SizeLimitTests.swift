import Foundation
import Logging
import XCTest

@testable import TokenVault

/// What comes from outside has a size limit, so that one hostile answer or line cannot make every later read of a
/// row carry megabytes.
final class SizeLimitTests: XCTestCase {
    func testAResponseLargerThanTheLimitIsRefusedBeforeParsing() {
        let padding = String(repeating: "a", count: TokenResponse.maximumBytes)
        let body = Array(#"{"access_token":"1000.at","refresh_token":"1000.rt","note":"\#(padding)"}"#.utf8)
        XCTAssertThrowsError(try TokenResponse.parse(body)) { error in
            XCTAssertTrue("\(error)".contains("more than the 1048576 it may have"), "\(error)")
        }
        XCTAssertThrowsError(try ImportRecord.parse(line: body)) { error in
            XCTAssertTrue("\(error)".contains("more than the 1048576 it may have"), "\(error)")
        }
    }

    func testATokenOrScopesOrMetadataTooLargeIsRefused() throws {
        let big = String(repeating: "x", count: TokenSet.maximumTokenBytes + 1)
        for body in [
            #"{"access_token":"\#(big)","refresh_token":"1000.rt"}"#,
            #"{"access_token":"1000.at","refresh_token":"\#(big)"}"#,
            #"{"access_token":"1000.at","refresh_token":"1000.rt","scope":"\#(big)"}"#,
        ] {
            XCTAssertThrowsError(try TokenResponse.parse(Array(body.utf8))) { error in
                XCTAssertEqual((error as? VaultError)?.code, .invalidInput)
                XCTAssertTrue("\(error)".contains("more than the 16384"), "\(error)")
            }
        }
        // Metadata is measured as the JSON it is stored as, when the row is sealed.
        let sealer = Sealer(keyring: try Keyring(current: .generate()))
        let metadata = ["api_domain": JSONValue.string(String(repeating: "d", count: TokenSet.maximumMetadataBytes))]
        let tokens = TokenSet(accessToken: Secret("at"), refreshToken: Secret("rt"), metadata: metadata)
        XCTAssertThrowsError(try sealer.sealRow(tokens, client: "c", provider: "p")) { error in
            XCTAssertTrue("\(error)".contains("more than the 65536 it may have"), "\(error)")
        }
        let empty = TokenSet(accessToken: Secret(""), refreshToken: Secret("rt"))
        XCTAssertThrowsError(try sealer.sealRow(empty, client: "c", provider: "p")) { error in
            XCTAssertTrue("\(error)".contains("the access_token is empty"), "\(error)")
        }
    }

    /// A provider's answer with too much metadata keeps its tokens (a rotated refresh token exists nowhere else)
    /// and loses its metadata; an answer too large is refused before it is parsed.
    func testAProvidersOversizedAnswerKeepsItsTokensOrIsRefused() async {
        let huge = String(repeating: "m", count: TokenSet.maximumMetadataBytes)
        let answer = #"{"access_token":"1000.at","refresh_token":"1000.rt2","expires_in":3600,"api_domain":"\#(huge)"}"#
        let transport = TokenEndpointClassificationTests.ScriptedTransport([
            .response(200, answer), .response(200, String(repeating: " ", count: TokenResponse.maximumBytes + 1)),
        ])
        let client = TokenEndpointClient(
            transport: transport, policy: RefreshPolicy(initialBackoff: 0.001, maximumBackoff: 0.002),
            logging: ContextLogger(Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        let provider = OAuthProvider.zoho("zoho_crm", clientID: "1000.app", clientSecret: Secret("s"))
        let kept = await client.refresh(provider: provider, refreshToken: Secret("1000.rt"), maximumAttempts: 1)
        guard case .success(let tokens) = kept.outcome else { return XCTFail("\(kept.outcome)") }
        XCTAssertEqual(tokens.refreshToken, Secret("1000.rt2"))
        XCTAssertEqual(tokens.metadata, [:])
        let refused = await client.refresh(provider: provider, refreshToken: Secret("1000.rt"), maximumAttempts: 1)
        guard case .failed(let error) = refused.outcome else { return XCTFail("\(refused.outcome)") }
        XCTAssertEqual(error.code, .providerError)
        XCTAssertTrue(error.message.contains("more than the 1048576 an answer may have"), error.message)
    }
}

/// Metadata is stored in plaintext, so a response's fields are kept by name, never by guessing which look secret.
final class MetadataAllowlistTests: XCTestCase {
    let body = Array(
        (#"{"access_token":"1000.at","refresh_token":"1000.rt","api_domain":"https://www.zohoapis.eu","#
            + #""token_type":"Bearer","api_key":"AKIA-secret","session":"s3cr3t","custom":"kept?"}"#).utf8)

    func testOnlyTheAllowedFieldsAreKeptAndTheOthersNamed() throws {
        let tokens = try TokenResponse.parse(body)
        XCTAssertEqual(
            tokens.metadata, ["api_domain": .string("https://www.zohoapis.eu"), "token_type": .string("Bearer")])
        XCTAssertEqual(TokenResponse.droppedFields(in: body), ["api_key", "custom", "session"])
        let custom = try TokenResponse.parse(body, metadataFields: ["custom"])
        XCTAssertEqual(custom.metadata, ["custom": .string("kept?")])
    }

    func testAProvidersAnswerKeepsTheProvidersFields() async {
        let transport = TokenEndpointClassificationTests.ScriptedTransport([
            .response(200, String(decoding: body, as: UTF8.self))
        ])
        let client = TokenEndpointClient(
            transport: transport, policy: RefreshPolicy(),
            logging: ContextLogger(Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })))
        var provider = OAuthProvider.zoho("zoho_crm", clientID: "1000.app", clientSecret: Secret("s"))
        provider.metadataFields.insert("custom")
        let result = await client.refresh(provider: provider, refreshToken: Secret("1000.rt"), maximumAttempts: 1)
        guard case .success(let tokens) = result.outcome else { return XCTFail("\(result.outcome)") }
        XCTAssertEqual(Set(tokens.metadata.keys), ["api_domain", "token_type", "custom"])
        XCTAssertNil(tokens.metadata["api_key"])
    }
}

/// libpq gives no SQLSTATE when a connection fails: its messages decide between "refused" (configuration) and
/// "unreachable". These are libpq 15's own texts.
final class RefusedConnectionTests: XCTestCase {
    func testRefusalsAreToldFromUnreachableServers() {
        let refused = [
            #"connection to server at "db" (10.0.0.1), port 5432 failed: FATAL: password authentication failed for user "vault""#,
            #"connection to server at "db" (10.0.0.1), port 5432 failed: server certificate for "db" does not match host name "db.internal""#,
            #"connection to server at "db" (10.0.0.1), port 5432 failed: SSL error: certificate verify failed"#,
            #"connection to server at "db" (10.0.0.1), port 5432 failed: server does not support SSL, but SSL was required"#,
            #"connection to server on socket "/tmp/.s.PGSQL.5432" failed: FATAL: database "vault" does not exist"#,
            #"connection to server at "db" (10.0.0.1), port 5432 failed: FATAL: no pg_hba.conf entry for host "10.0.0.2""#,
        ]
        let unreachable = [
            #"connection to server at "db" (10.0.0.1), port 5432 failed: Connection refused"#,
            #"connection to server on socket "/tmp/.s.PGSQL.5432" failed: No such file or directory"#,
            #"connection to server at "db" (10.0.0.1), port 5432 failed: timeout expired"#,
            #"could not translate host name "db" to address: Name or service not known"#,
        ]
        for message in refused { XCTAssertTrue(PGConnection.isRefusedSetting(message), message) }
        for message in unreachable { XCTAssertFalse(PGConnection.isRefusedSetting(message), message) }
    }
}
