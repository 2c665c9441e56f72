import MeshControlModel
import XCTest

/// `meshctl reload --dry-run`'s text: grouped by kind in a fixed order, one column width across
/// the groups, "no change" for an empty plan, and the JSON every field of which is always present.
final class ConfigChangesTextTests: XCTestCase {
    func testGroupsInKindOrderWithAlignedColumns() {
        let changes = [
            ConfigChange(.tunnel, .redialed, "db1", detail: "certificate or CA bundle changed: a fresh tunnel is authenticated with it"),
            ConfigChange(.tunnel, .added, "db3", detail: "this node dials it at 127.0.1.4:7443"),
            ConfigChange(.balancer, .removed, "pg", detail: "its sessions go on until they end"),
            ConfigChange(.listener, .opened, "forward-15003", detail: "127.0.0.1:15003 -> echo@db3"),
        ]
        XCTAssertEqual(
            ConfigChangesText.render(changes, style: .plain),
            """
            tunnels
              redialed  db1            certificate or CA bundle changed: a fresh tunnel is authenticated with it
              added     db3            this node dials it at 127.0.1.4:7443
            listeners
              opened    forward-15003  127.0.0.1:15003 -> echo@db3
            balancers
              removed   pg             its sessions go on until they end

            """
        )
        XCTAssertEqual(ConfigChangesText.render([], style: .plain), "no change\n")
    }

    func testJSON() throws {
        XCTAssertEqual(
            try ControlJSON.text(ConfigChange(.service, .changed, "pg", detail: nil)),
            """
            {
              "action" : "changed",
              "detail" : null,
              "kind" : "service",
              "name" : "pg"
            }

            """
        )
    }
}
