import XCTest

@testable import TokenVault

final class NonceBatchTests: XCTestCase {
    func testEveryNonceOfABatchIsFreshAndFullLength() {
        var batch = NonceBatch(count: 1000)
        let nonces = (0..<1000).map { _ in batch.next() }
        XCTAssertTrue(nonces.allSatisfy { $0.count == 24 })
        XCTAssertEqual(Set(nonces).count, 1000)
        var other = NonceBatch(count: 1)
        XCTAssertFalse(nonces.contains(other.next()))
    }

    func testSealsFromOneBatchUseDifferentNonces() throws {
        let sealer = Sealer(keyring: try Keyring(current: VaultKey.generate()))
        var batch = NonceBatch(count: 2)
        let context = SealContext(field: .accessToken, provider: "p", clientID: "c")
        let first = sealer.seal(Secret("same"), context: context, key: sealer.keyring.current, nonce: batch.next())
        let second = sealer.seal(Secret("same"), context: context, key: sealer.keyring.current, nonce: batch.next())
        XCTAssertNotEqual(first.nonce, second.nonce)
        XCTAssertNotEqual(first.ciphertext, second.ciphertext)
    }

    func testANoncePairGivesTwoDifferentFullLengthNonces() {
        var seen: Set<[UInt8]> = []
        for _ in 0..<500 {
            var pair = NoncePair()
            let first = pair.next()
            let second = pair.next()
            XCTAssertEqual(first.count, 24)
            XCTAssertEqual(second.count, 24)
            XCTAssertNotEqual(first, second)
            seen.insert(first)
            seen.insert(second)
        }
        XCTAssertEqual(seen.count, 1000, "every pair must be fresh")
    }

    func testAStoreSealsItsTwoTokensUnderDifferentNonces() throws {
        let vault = try Vault(
            configuration: VaultConfiguration(
                databaseURL: "", keyring: try Keyring(current: VaultKey.generate())))
        let tokens = TokenSet(accessToken: Secret("access"), refreshToken: Secret("refresh"))
        let row = try vault.sealer.sealRow(tokens, client: "c", provider: "p")
        let again = try vault.sealer.sealRow(tokens, client: "c", provider: "p")
        XCTAssertNotEqual(row.accessToken?.nonce, row.refreshToken.nonce)
        XCTAssertNotEqual(row.refreshToken.nonce, again.refreshToken.nonce)
        XCTAssertEqual(try vault.open(row).refreshToken, Secret("refresh"))
        XCTAssertEqual(try vault.open(again).accessToken, Secret("access"))
    }
}
