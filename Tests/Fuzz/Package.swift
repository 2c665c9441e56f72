// swift-tools-version:6.1
// libFuzzer executables for tunnelmesh, kept out of the main package so that a normal build never
// needs the fuzzer runtime. Build and run them with scripts/fuzz.sh (`-sanitize=fuzzer,address`).
// The entry points live in the main package (Tests/MeshFuzzTargets), where FuzzReplayTests replays
// the committed corpus (Tests/FuzzCorpus) through them under `swift test`. The main package offers
// them as a product only when TUNNELMESH_FUZZ_PRODUCTS=1 (scripts/fuzz.sh sets it), so that its
// normal builds have no library product.
import Foundation
import PackageDescription

guard ProcessInfo.processInfo.environment["TUNNELMESH_FUZZ_PRODUCTS"] == "1" else {
    fatalError("Tests/Fuzz needs TUNNELMESH_FUZZ_PRODUCTS=1 in the environment (scripts/fuzz.sh sets it)")
}

// A path dependency's identity is its directory's name, whatever the clone is called.
let root = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

let package = Package(
    name: "tunnelmesh-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: root.path)
    ],
    targets: [
        // libFuzzer's driver, called from each executable's entry point.
        .target(name: "FuzzDriver")
    ]
        + ["FuzzMeshConfig", "FuzzFrontDoor", "FuzzTLS", "FuzzTunnelFrames"].map { name in
            .executableTarget(
                name: name,
                dependencies: ["FuzzDriver", .product(name: "MeshFuzzTargets", package: root.lastPathComponent)]
            )
        },
    swiftLanguageModes: [.v6]
)
