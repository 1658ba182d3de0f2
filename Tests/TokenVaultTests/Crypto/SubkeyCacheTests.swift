import XCTest

@testable import TokenVault

final class SubkeyCacheTests: XCTestCase {
    private static func derived(_ key: VaultKey, _ context: SealContext) -> [UInt8] {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { output in
            Sealer.deriveSubkey(key: key, context: context, into: output)
            return Array(UnsafeRawBufferPointer(output))
        }
    }

    private static func cached(_ cache: SubkeyCache, _ key: VaultKey, _ context: SealContext) -> [UInt8]? {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { output in
            cache.lookup(key: key, context: context, into: output) ? Array(UnsafeRawBufferPointer(output)) : nil
        }
    }

    private static func store(_ cache: SubkeyCache, _ key: VaultKey, _ context: SealContext) {
        Self.derived(key, context).withUnsafeBytes { cache.store(key: key, context: context, subkey: $0) }
    }

    func testReturnsWhatWasStoredForExactlyThatKeyAndContext() {
        let cache = SubkeyCache(capacity: 64)
        let key = VaultKey.generate()
        let context = SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme")
        XCTAssertNil(Self.cached(cache, key, context))
        Self.store(cache, key, context)
        XCTAssertEqual(Self.cached(cache, key, context), Self.derived(key, context))

        // Every other field, provider, client and key misses, even when it lands in the same slot.
        XCTAssertNil(Self.cached(cache, key, SealContext(field: .refreshToken, provider: "zoho_crm", clientID: "acme")))
        XCTAssertNil(Self.cached(cache, key, SealContext(field: .accessToken, provider: "zoho_crm_", clientID: "acme")))
        XCTAssertNil(Self.cached(cache, key, SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme2")))
        XCTAssertNil(Self.cached(cache, VaultKey.generate(), context))
    }

    func testACollidingContextEvictsButIsNeverServedAnotherRowsSubkey() {
        // One pair of entries: every row collides.
        let cache = SubkeyCache(capacity: 2)
        let key = VaultKey.generate()
        let first = SealContext(field: .accessToken, provider: "p", clientID: "a")
        let second = SealContext(field: .accessToken, provider: "p", clientID: "b")
        let third = SealContext(field: .accessToken, provider: "p", clientID: "c")
        Self.store(cache, key, first)
        XCTAssertNil(Self.cached(cache, key, second))
        // Two colliding rows share the pair.
        Self.store(cache, key, second)
        XCTAssertEqual(Self.cached(cache, key, first), Self.derived(key, first))
        XCTAssertEqual(Self.cached(cache, key, second), Self.derived(key, second))
        // A third evicts the older one, and each is served only its own subkey.
        Self.store(cache, key, third)
        XCTAssertNil(Self.cached(cache, key, first))
        XCTAssertEqual(Self.cached(cache, key, second), Self.derived(key, second))
        XCTAssertEqual(Self.cached(cache, key, third), Self.derived(key, third))
    }

    func testBothFieldsOfARowShareAnEntryWithoutEvictingEachOther() {
        let cache = SubkeyCache(capacity: 2)
        let key = VaultKey.generate()
        let access = SealContext(field: .accessToken, provider: "p", clientID: "a")
        let refresh = SealContext(field: .refreshToken, provider: "p", clientID: "a")
        let other = SealContext(field: .accessToken, provider: "p", clientID: "b")
        Self.store(cache, key, access)
        XCTAssertNil(Self.cached(cache, key, refresh), "a field not yet stored misses")
        Self.store(cache, key, refresh)
        Self.store(cache, key, other)
        XCTAssertEqual(Self.cached(cache, key, access), Self.derived(key, access))
        XCTAssertEqual(Self.cached(cache, key, refresh), Self.derived(key, refresh))
        XCTAssertEqual(Self.cached(cache, key, other), Self.derived(key, other))
        XCTAssertNil(Self.cached(cache, key, SealContext(field: .refreshToken, provider: "p", clientID: "b")))
    }

    func testRowSubkeysAreTheDerivedOnesWhetherCachedHalfCachedOrNot() throws {
        let key = VaultKey.generate()
        let sealer = Sealer(keyring: try Keyring(current: key))
        let access = SealContext(field: .accessToken, provider: "zoho_crm", clientID: "acme")
        let refresh = SealContext(field: .refreshToken, provider: "zoho_crm", clientID: "acme")
        let rowSubkeys = { (cached: Bool, withAccess: Bool) in
            sealer.withRowSubkeys(
                key: key, provider: "zoho_crm", clientID: "acme", access: withAccess, cached: cached
            ) { Array($0) + Array($1) }
        }
        let expected = Self.derived(key, access) + Self.derived(key, refresh)
        XCTAssertEqual(rowSubkeys(false, true), expected)
        XCTAssertNil(Self.cached(sealer.cache, key, refresh), "uncached work leaves the cache alone")
        XCTAssertEqual(rowSubkeys(true, false), Self.derived(key, refresh), "no access subkey when not asked")
        XCTAssertNil(Self.cached(sealer.cache, key, access))
        XCTAssertEqual(rowSubkeys(true, true), expected, "refresh from the cache, access derived")
        XCTAssertEqual(rowSubkeys(true, true), expected, "both from the cache")
        XCTAssertEqual(Self.cached(sealer.cache, key, access), Self.derived(key, access))
    }

    func testARowMovedToTheSecondPlaceKeepsItsSubkeysAndAThirdRowEvictsIt() {
        let cache = SubkeyCache(capacity: 2)  // one pair: every row collides
        let key = VaultKey.generate()
        let a = (
            SealContext(field: .accessToken, provider: "p", clientID: "a"),
            SealContext(field: .refreshToken, provider: "p", clientID: "a")
        )
        let row = { (client: String) -> (UInt8, [UInt8]) in
            withUnsafeTemporaryAllocation(byteCount: 64, alignment: 1) { line in
                let found = cache.lookupRow(key: key, provider: "p", clientID: client, into: line)
                return (found, Array(UnsafeRawBufferPointer(line)))
            }
        }
        Self.store(cache, key, a.0)
        Self.store(cache, key, SealContext(field: .accessToken, provider: "p", clientID: "b"))  // moves a
        Self.store(cache, key, a.1)  // fills a's other half where it now sits
        let (found, line) = row("a")
        XCTAssertEqual(found, 3)
        XCTAssertEqual(line, Self.derived(key, a.0) + Self.derived(key, a.1))
        let (foundB, lineB) = row("b")
        XCTAssertEqual(foundB, 1)
        XCTAssertEqual(Array(lineB[32...]), [UInt8](repeating: 0, count: 32), "a half without its bit is zero")
        Self.store(cache, key, SealContext(field: .accessToken, provider: "p", clientID: "c"))  // evicts the older
        XCTAssertEqual(row("a").0 + row("b").0 + row("c").0, 2, "two rows remain, one field each")
    }

    func testTheProviderClientBoundaryIsPartOfTheMatch() {
        let cache = SubkeyCache(capacity: 2)
        let key = VaultKey.generate()
        Self.store(cache, key, SealContext(field: .accessToken, provider: "ab", clientID: "c"))
        XCTAssertNil(Self.cached(cache, key, SealContext(field: .accessToken, provider: "a", clientID: "bc")))
    }

    func testSealerOpensTheSameWithAndWithoutTheCache() throws {
        let key = VaultKey.generate()
        let sealer = Sealer(keyring: try Keyring(current: key))
        for client in 0..<200 {
            let context = SealContext(field: .refreshToken, provider: "zoho_crm", clientID: "client-\(client)")
            let sealed = sealer.seal(Secret("token-\(client)"), context: context, key: key, cached: client % 2 == 0)
            XCTAssertEqual(
                try sealer.open(sealed, key: key, context: context, cached: false).reveal(), "token-\(client)")
            XCTAssertEqual(
                try sealer.open(sealed, key: key, context: context, cached: true).reveal(), "token-\(client)")
            XCTAssertEqual(
                try sealer.open(sealed, key: key, context: context, cached: true).reveal(), "token-\(client)")
        }
    }

    func testConcurrentLookupsAndStoresStayConsistent() async throws {
        let cache = SubkeyCache(capacity: 16)
        let key = VaultKey.generate()
        let contexts = (0..<64).map { SealContext(field: .accessToken, provider: "p", clientID: "c\($0)") }
        let expected = contexts.map { Self.derived(key, $0) }
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var mismatches = 0
                    for round in 0..<2000 {
                        let index = (round * 7 + worker * 13) % contexts.count
                        if let found = SubkeyCacheTests.cached(cache, key, contexts[index]) {
                            if found != expected[index] { mismatches += 1 }
                        } else {
                            SubkeyCacheTests.store(cache, key, contexts[index])
                        }
                    }
                    return mismatches
                }
            }
            return await group.reduce(0, +)
        }
        XCTAssertEqual(mismatches, 0)
    }
}
