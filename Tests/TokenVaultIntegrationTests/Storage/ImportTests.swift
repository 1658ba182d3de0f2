import Foundation
import TokenVaultTesting
import XCTest

@testable import TokenVault

/// `importTokens` over several statements: everything written, later records winning, all or nothing.
final class ImportTests: DatabaseTestCase {
    private func record(_ client: String, access: String) -> ImportRecord {
        ImportRecord(
            client: client, provider: "zoho_crm",
            tokens: TokenSet(
                accessToken: Secret(access), refreshToken: Secret("1000.refresh-\(client)"),
                expiresAt: Date().addingTimeInterval(3600),
                metadata: ["api_domain": .string("https://www.zohoapis.eu")]))
    }

    func testManyBatchesAreAllWrittenAndOpen() async throws {
        let fixture = try await makeFixture()
        let count = TokenRepository.importBatchSize * 2 + 345
        let written = try await fixture.vault.importTokens(
            (0..<count).map { record("client-\($0)", access: "1000.access-\($0)") })
        XCTAssertEqual(written, count)
        let rows = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(rows, [[String(count)]])
        for index in [0, TokenRepository.importBatchSize, count - 1] {
            let tokens = try await fixture.vault.fetch(client: "client-\(index)", provider: "zoho_crm")
            XCTAssertEqual(tokens.accessToken?.reveal(), "1000.access-\(index)")
        }
        let nonces = try await fixture.sql(
            "SELECT count(DISTINCT access_token_nonce) + count(DISTINCT refresh_token_nonce) FROM oauth_tokens")
        XCTAssertEqual(nonces, [[String(2 * count)]], "every sealed value has its own nonce")
    }

    func testTheLastRecordForARowWinsAcrossBatches() async throws {
        let fixture = try await makeFixture()
        var records = (0..<TokenRepository.importBatchSize + 10).map {
            record("client-\($0)", access: "1000.first-\($0)")
        }
        records.append(record("client-3", access: "1000.second"))  // the same row again, in the second batch
        records.append(record("client-3", access: "1000.third"))
        let written = try await fixture.vault.importTokens(records)
        XCTAssertEqual(written, TokenRepository.importBatchSize + 10)
        let tokens = try await fixture.vault.fetch(client: "client-3", provider: "zoho_crm")
        XCTAssertEqual(tokens.accessToken?.reveal(), "1000.third")
    }

    func testTheLastRecordForARowWinsInOneStatement() async throws {
        let fixture = try await makeFixture()
        let records = [
            record("client-a", access: "1000.first"), record("client-b", access: "1000.b"),
            record("client-a", access: "1000.second"),
        ]
        let written = try await fixture.vault.importTokens(records)
        XCTAssertEqual(written, 2, "a row counts once, however many records it had")
        let tokens = try await fixture.vault.fetch(client: "client-a", provider: "zoho_crm")
        XCTAssertEqual(tokens.accessToken?.reveal(), "1000.second")
    }

    func testARecordPostgreSQLCannotStoreIsNamed() async throws {
        let fixture = try await makeFixture()
        var records = (0..<5).map { record("client-\($0)", access: "1000.a-\($0)") }
        records[3].tokens.metadata = ["api_domain": .string("https://x\u{0}")]
        let error = await assertVaultError(.invalidInput) { try await fixture.vault.importTokens(records) }
        XCTAssertTrue(error?.message.hasPrefix("import record 4: ") ?? false, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("NUL character") ?? false, "\(String(describing: error))")
        let rows = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(rows, [["0"]])
    }

    func testAFailureInALaterBatchWritesNothing() async throws {
        let fixture = try await makeFixture()
        // A real statement failure in the third batch, raised by PostgreSQL itself.
        _ = try await fixture.sql(
            """
            CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.client_id = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF;
                RETURN NEW;
            END $$
            """)
        _ = try await fixture.sql(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON oauth_tokens FOR EACH ROW EXECUTE FUNCTION refuse_poison()")
        var records = (0..<TokenRepository.importBatchSize * 2 + 5).map {
            record("client-\($0)", access: "1000.a-\($0)")
        }
        records.append(record("poison", access: "1000.poison"))
        do {
            try await fixture.vault.importTokens(records)
            XCTFail("the import should have failed")
        } catch {
            XCTAssertTrue(error.message.contains("poisoned row"), error.message)
        }
        let rows = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(rows, [["0"]])
        // The connection is usable afterwards: the transaction was rolled back, not left open.
        try await fixture.vault.store(sampleTokens(), client: "after", provider: "zoho_crm")
        let after = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(after, [["1"]])
    }

    func testAnInvalidRecordIsNamedAndNothingIsWritten() async throws {
        let fixture = try await makeFixture()
        let records = [record("ok", access: "1000.a"), record("bad\nclient", access: "1000.b")]
        do {
            try await fixture.vault.importTokens(records)
            XCTFail("the import should have failed")
        } catch {
            XCTAssertEqual(error.code, .invalidInput)
            XCTAssertTrue(error.message.hasPrefix("import record 2: the client id"), error.message)
        }
        let rows = try await fixture.sql("SELECT count(*) FROM oauth_tokens")
        XCTAssertEqual(rows, [["0"]])
    }
}
