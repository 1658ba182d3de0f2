extension Vault {
    /// How many rows are sealed under each key id, counted in the database (keys not in the keyring included):
    /// which previous keys still hold rows, and which no row uses any more and can be retired.
    ///
    /// - Throws: `.connectionFailed`, `.database` or `.schemaOutdated` from the database.
    public func rowCountsByKeyID() async throws(VaultError) -> [KeyID: Int] {
        try await repository.countByKeyID()
    }
}
