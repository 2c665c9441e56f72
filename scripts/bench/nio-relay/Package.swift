// swift-tools-version:6.1
// Bare SwiftNIO TCP relays, the floor under any NIO-based data path, for scripts/bench/tunnel.sh:
// two chained (client → relay → relay → server) are the tunnel's four hops with no TLS and no
// framing; with `--tls-connect`/`--tls-listen` the link between them is meshd's own TLS handler
// (MeshTLS's OpenSSLHandler) and nothing else. Not part of the product: built on its own, in
// release mode, against the same swift-nio as meshd. The main package offers MeshTLS as a product
// only when TUNNELMESH_BENCH_PRODUCTS=1 (tunnel.sh sets it).
import Foundation
import PackageDescription

guard ProcessInfo.processInfo.environment["TUNNELMESH_BENCH_PRODUCTS"] == "1" else {
    fatalError("scripts/bench/nio-relay needs TUNNELMESH_BENCH_PRODUCTS=1 in the environment (tunnel.sh sets it)")
}

// A path dependency's identity is its directory's name, whatever the clone is called.
let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "nio-relay",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(path: root.path),
    ],
    targets: [
        .executableTarget(
            name: "nio-relay",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "MeshTLS", package: root.lastPathComponent),
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)
