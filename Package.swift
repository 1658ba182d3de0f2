// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "token-vault",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "TokenVault", targets: ["TokenVault"]),
        .library(name: "TokenVaultTesting", targets: ["TokenVaultTesting"]),
        .executable(name: "token-vault", targets: ["TokenVaultCLI"]),
        .executable(name: "token-vault-test-postgres", targets: ["TokenVaultTestPostgres"]),
        .executable(name: "token-vault-test-stampede", targets: ["TokenVaultTestStampede"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"]), .brew(["libsodium"]), .yum(["libsodium-devel"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"]), .yum(["libpq-devel"])]
        ),
        .target(
            name: "TokenVault",
            dependencies: [
                "CSodium",
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "TokenVaultTesting",
            dependencies: [
                "TokenVault",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "TokenVaultCLI",
            dependencies: [
                "TokenVault",
                "TokenVaultTesting",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "TokenVaultTestPostgres",
            dependencies: ["TokenVaultTesting"]
        ),
        .executableTarget(
            name: "TokenVaultTestStampede",
            dependencies: ["TokenVault"]
        ),
        .testTarget(
            name: "TokenVaultTests",
            dependencies: [
                "TokenVault",
                "TokenVaultTesting",
                "TokenVaultCLI",
                "TokenVaultTestPostgres",
                "TokenVaultTestStampede",
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
