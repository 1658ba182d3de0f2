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
}
