/// Which secret of a row a sealed value holds. Part of the sealing context, so a value cannot change field.
package enum TokenField: String, Sendable, CaseIterable, Codable {
    case accessToken = "access_token"
    case refreshToken = "refresh_token"
    /// The PKCE verifier of an authorization in progress (`token_vault_authorizations`); never cached.
    case pkceVerifier = "pkce_verifier"
}

/// A sealed secret as stored: the ciphertext column (format byte, MAC, ciphertext) and the nonce column.
package struct SealedValue: Sendable, Equatable {
    package var ciphertext: [UInt8]
    package var nonce: [UInt8]

    package init(ciphertext: [UInt8], nonce: [UInt8]) {
        self.ciphertext = ciphertext
        self.nonce = nonce
    }
}
