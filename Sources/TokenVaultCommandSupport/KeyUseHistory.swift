import Foundation
import TokenVault

/// The hook for the audit trail, which is being built separately: when it exists, ``firstAndLastUse(of:in:)``
/// answers from it, and `token-vault keys` shows each key's first and last use (JSON `first_use` and `last_use`).
/// Until then it answers nil, and `keys` says the uses are not recorded.
package enum KeyUseHistory {
    /// When a key first and last sealed or opened a row, from the audit trail; nil while there is none.
    package static func firstAndLastUse(of keyID: KeyID, in vault: Vault) async throws -> (first: Date, last: Date)? {
        nil
    }
}
