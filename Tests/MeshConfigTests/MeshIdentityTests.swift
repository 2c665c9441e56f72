import XCTest

@testable import MeshConfig

final class MeshIdentityTests: XCTestCase {
    func testRoundTrip() {
        let identity = MeshIdentity(mesh: "demo", node: "db1")
        XCTAssertEqual(identity.uri, "spiffe://demo/node/db1")
        XCTAssertEqual(identity.description, "spiffe://demo/node/db1")
        XCTAssertEqual(MeshIdentity(uri: identity.uri), identity)

        let dotted = MeshIdentity(mesh: "prod.example-1_eu", node: "9app_x-1")
        XCTAssertEqual(MeshIdentity(uri: dotted.uri), dotted)
    }

    func testRejectsNearMisses() {
        let nearMisses = [
            "spiffe://demo/node/",
            "spiffe://demo/nodes/x",
            "spiffe://demo/node/x/y",
            "spiffe://demo/node/x/",
            "spiffe://demo/node",
            "spiffe://demo/x",
            "spiffe://demo//node/x",
            "spiffe:///node/x",
            "spiffe://Demo/node/x",
            "spiffe://demo/node/X",
            "spiffe://demo/node/-x",
            "spiffe://demo:443/node/x",
            "spiffe://user@demo/node/x",
            "spiffe://demo/node/x?y=1",
            "spiffe://demo/node/x#frag",
            "spiffe://demo/node/x%20",
            "SPIFFE://demo/node/x",
            "spiffe:/demo/node/x",
            "https://demo/node/x",
            "https://example.com/spiffe://demo/node/x",
            " spiffe://demo/node/x",
            "spiffe://demo/node/\(String(repeating: "a", count: 64))",
            "",
        ]
        for uri in nearMisses {
            XCTAssertNil(MeshIdentity(uri: uri), uri)
        }
    }

    func testHashableByMeshAndNode() {
        let identities: Set = [
            MeshIdentity(mesh: "demo", node: "a"), MeshIdentity(mesh: "demo", node: "a"), MeshIdentity(mesh: "other", node: "a"),
        ]
        XCTAssertEqual(identities.count, 2)
    }
}
