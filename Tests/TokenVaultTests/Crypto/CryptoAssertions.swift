import XCTest

@testable import TokenVault

/// Checks every error a user can cause: the right code, a message that names the cause, and no secret in it.
enum CryptoAssert {
    @discardableResult
    static func throwsVaultError<T>(
        _ code: VaultError.Code, mentioning expected: [String] = [], secrets: [String] = [],
        file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
    ) -> VaultError? {
        let error: VaultError
        do {
            _ = try body()
            XCTFail("expected a VaultError with code \(code), but nothing was thrown", file: file, line: line)
            return nil
        } catch let thrown as VaultError {
            error = thrown
        } catch {
            XCTFail("expected a VaultError with code \(code), got \(type(of: error)): \(error)", file: file, line: line)
            return nil
        }
        XCTAssertEqual(error.code, code, "message: \(error.message)", file: file, line: line)
        for text in expected where !text.isEmpty {
            XCTAssertTrue(
                error.message.contains(text), "message does not mention \"\(text)\": \(error.message)",
                file: file, line: line)
        }
        for secret in secrets where !secret.isEmpty {
            for shown in [error.message, error.description, String(reflecting: error)] {
                XCTAssertFalse(shown.contains(secret), "error shows a secret: \(shown)", file: file, line: line)
            }
        }
        return error
    }

    /// The forms in which a key could leak into a message.
    static func secretForms(of key: VaultKey) -> [String] {
        let base64 = key.exportBase64()
        let hex = key.material.withUnsafeBytes { CryptoVectors.hex($0) }
        return [base64, String(base64.dropLast()), hex]
    }
}
