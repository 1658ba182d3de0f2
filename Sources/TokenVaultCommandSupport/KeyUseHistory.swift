import Foundation
import TokenVault

/// Each key's first and last use for `token-vault keys` (JSON `first_use` and `last_use`), from the audit trail.
package enum KeyUseHistory {
    /// When each key first and last sealed or opened something, by key id; empty when there is no audit trail.
    package static func firstAndLastUse(in vault: Vault) async throws -> [KeyID: (first: Date, last: Date)] {
        try await vault.keyUse().mapValues { ($0.firstUse, $0.lastUse) }
    }
}
