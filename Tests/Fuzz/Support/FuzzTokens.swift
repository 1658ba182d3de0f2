import TokenVault

/// Checks shared by the parsers' targets: what a parser accepts, the vault can store and read back.
package enum FuzzTokens {
    /// `tokens` seal into a row for (client, provider), unless their metadata is too large to store (checked only
    /// when sealing), and the row opens to the same tokens.
    package static func checkSealsAndOpens(_ tokens: TokenSet, client: String, provider: String, sealer: Sealer) {
        for token in [tokens.accessToken, tokens.refreshToken].compactMap({ $0 }) {
            Fuzz.require(token.count > 0, "a parsed token is empty")
            Fuzz.require(
                token.withUnsafeBytes { !$0.contains { $0 < 0x20 || $0 == 0x7f } }, "a parsed token has a control byte")
        }
        let row: SealedRow
        do {
            row = try sealer.sealRow(tokens, client: client, provider: provider)
        } catch {
            Fuzz.require(
                error.code == .invalidInput && error.message.contains("metadata"),
                "parsed tokens do not seal: \(error.code): \(error.message)")
            return
        }
        do {
            let opened = try sealer.openRow(row)
            Fuzz.require(opened.access == tokens.accessToken, "the access token does not open to itself")
            Fuzz.require(opened.refresh == tokens.refreshToken, "the refresh token does not open to itself")
        } catch {
            Fuzz.require(false, "a row sealed from parsed tokens does not open: \(error.code): \(error.message)")
        }
    }
}
