// swift-tools-version:6.1
// tunnelmesh: a secure tunnel mesh for PostgreSQL clusters. ARCHITECTURE.md has the module map.
import Foundation
import PackageDescription

// The fuzz entry points are a product only for Tests/Fuzz/Package.swift (scripts/fuzz.sh sets the
// variable), so a normal build offers no library beyond meshd and meshctl. FuzzReplayTests uses the
// target either way.
let fuzzProducts: [Product] =
    ProcessInfo.processInfo.environment["TUNNELMESH_FUZZ_PRODUCTS"] == "1"
    ? [.library(name: "MeshFuzzTargets", targets: ["MeshFuzzTargets"])] : []

// The TLS handler is a product only for scripts/bench/nio-relay (tunnel.sh sets the variable), which
// measures it on its own between two bare relays.
let benchProducts: [Product] =
    ProcessInfo.processInfo.environment["TUNNELMESH_BENCH_PRODUCTS"] == "1"
    ? [.library(name: "MeshTLS", targets: ["MeshTLS"])] : []

let package = Package(
    name: "tunnelmesh",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "meshd", targets: ["meshd"]),
        .executable(name: "meshctl", targets: ["meshctl"]),
    ] + fuzzProducts + benchProducts,
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // System library shims.
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),

        // mesh.json model and validation. Foundation only.
        .target(name: "MeshConfig"),

        // OpenSSL 3 contexts, the NIO TLS handler over memory BIOs, the PKI, front-door TLS, file digests.
        .target(
            name: "MeshTLS",
            dependencies: [
                "COpenSSL", "MeshConfig",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),

        // Peer links, HTTP/2 CONNECT streams, the inbound acceptor, forwards and splicing.
        .target(
            name: "MeshTunnel",
            dependencies: [
                "MeshTLS", "MeshConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),

        // PostgreSQL wire framing at the front door, the backend registry, routing and the local role
        // probe (libpq: PostgreSQL's own client, on the system's OpenSSL like the rest of meshd).
        .target(
            name: "MeshBalancer",
            dependencies: [
                "MeshTunnel", "MeshTLS", "MeshConfig", "CLibPQ", "MeshHTTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The control API's wire models and the text meshctl renders from them. Foundation only, so
        // that meshctl links no tunnel, PostgreSQL or metrics code.
        .target(name: "MeshControlModel"),

        // One HTTP/1.1 request per connection with a deadline: the control API's client and the
        // database node's reads of its Patroni REST API both go through it.
        .target(
            name: "MeshHTTPClient",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        // The control API's client (HTTP/1.1 over the node's Unix socket), for meshctl and tests.
        .target(
            name: "MeshControlClient",
            dependencies: [
                "MeshControlModel", "MeshHTTPClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        // The control API's server on the node's Unix socket, and metrics.
        .target(
            name: "MeshControl",
            dependencies: [
                "MeshControlModel", "MeshTunnel", "MeshBalancer", "MeshConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),

        // Named listen fds (socket activation), sd_notify states and the watchdog.
        .target(
            name: "MeshSystemd",
            dependencies: [
                "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        .executableTarget(
            name: "meshd",
            dependencies: [
                "MeshConfig", "MeshTLS", "MeshTunnel", "MeshBalancer", "MeshControl", "MeshControlModel", "MeshSystemd",
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        .executableTarget(
            name: "meshctl",
            dependencies: [
                "MeshConfig", "MeshTLS", "MeshControlModel", "MeshControlClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // The one test harness: the test-case base, meshes, spawned processes, the PKI, the product
        // finder and the command runner every process-level suite uses.
        .target(
            name: "MeshTestSupport",
            dependencies: [
                "MeshConfig", "MeshTunnel", "MeshBalancer", "MeshControl", "MeshControlModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/MeshTestSupport"
        ),

        // Fuzz entry points: the libFuzzer executables (Tests/Fuzz/) and FuzzReplayTests call the same functions.
        .target(
            name: "MeshFuzzTargets",
            dependencies: [
                "MeshConfig", "MeshTLS", "MeshTunnel", "MeshBalancer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/MeshFuzzTargets"
        ),

        .testTarget(name: "MeshConfigTests", dependencies: ["MeshConfig"]),
        .testTarget(name: "FuzzReplayTests", dependencies: ["MeshFuzzTargets"]),
        .testTarget(
            name: "MeshTunnelTests",
            dependencies: [
                "MeshTunnel", "MeshConfig", "MeshTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MeshTLSTests",
            dependencies: [
                "MeshTLS", "MeshConfig", "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "MeshControlTests",
            dependencies: [
                "MeshControl", "MeshControlModel", "MeshControlClient", "MeshTunnel", "MeshBalancer", "MeshTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MeshSystemdTests",
            dependencies: [
                "MeshSystemd", "MeshTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "MeshBalancerTests",
            dependencies: [
                "MeshBalancer", "MeshConfig", "MeshTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Real Patroni answers, read by PatroniAnswerTests from beside its source.
            exclude: ["PatroniAnswers"]
        ),
        // Tests that start real processes one component at a time (meshctl and meshd on one node or
        // two, openssl, PostgreSQL, systemd tools, meshd under a stand-in supervisor); all quick, so
        // `scripts/test.sh --quick` runs them. The unit targets above start no process; the
        // multi-node scenarios are IntegrationTests.
        .testTarget(
            name: "ProcessTests",
            dependencies: [
                "MeshTestSupport", "MeshConfig", "MeshTLS", "MeshTunnel", "MeshBalancer", "MeshControl", "MeshControlModel",
                "MeshControlClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "COpenSSL", "MeshTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
