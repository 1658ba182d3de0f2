// swift-tools-version:6.2
import PackageDescription

// An example service that serves a customer's Zoho CRM leads with tokens kept by token-vault. It depends on the
// token-vault package three folders up, as a service in its own repository would on a released version.
let package = Package(
    name: "leads-service",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "leads-service", targets: ["leads-service"])
    ],
    dependencies: [
        .package(name: "token-vault", path: "../../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "LeadsService",
            dependencies: [
                .product(name: "TokenVault", package: "token-vault"),
                .product(name: "TokenVaultServiceLifecycle", package: "token-vault"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "leads-service", dependencies: ["LeadsService"]),
        .testTarget(
            name: "LeadsServiceTests",
            dependencies: [
                "LeadsService",
                .product(name: "TokenVaultTesting", package: "token-vault"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
    ]
)
