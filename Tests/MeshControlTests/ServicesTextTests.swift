import Foundation
import MeshControl
import MeshControlModel
import MeshTestSupport
import XCTest

/// `meshctl services`: entries built from a real parsed mesh.json, exact text and JSON out.
final class ServicesTextTests: XCTestCase {
    func testServedServicesOfADatabaseNode() throws {
        let services = ServiceInfo.entries(config: try ControlFixtures.config(), node: "db1")
        XCTAssertEqual(
            ServicesText.render(services, style: .plain),
            """
            SERVICE   ROLE    LOCAL ADDRESS    ACCESS
            echo      served  127.0.0.1:17001  from every node
            metrics   served  127.0.0.1:9100   from no node (no "allow")
            postgres  served  127.0.0.1:55432  from app1

            """
        )
    }

    func testServedAndForwardedOnOneNode() throws {
        let services = ServiceInfo.entries(config: try ControlFixtures.config(), node: "db2")
        XCTAssertEqual(
            ServicesText.render(services, style: .plain),
            """
            SERVICE   ROLE     LOCAL ADDRESS        ACCESS
            echo      served   unix:/run/echo.sock  from every node
            postgres  served   127.0.0.1:55433      from app1
            postgres  forward  127.0.0.1:15433      to postgres@db1

            """
        )
    }

    func testForwardsOnlyJSON() throws {
        let services = ServiceInfo.entries(config: try ControlFixtures.config(), node: "app1")
        XCTAssertEqual(
            try ControlJSON.text(services),
            """
            [
              {
                "allow" : null,
                "listen" : "127.0.0.1:15432",
                "name" : "postgres",
                "role" : "forward",
                "target" : null,
                "to" : "postgres@db1"
              },
              {
                "allow" : null,
                "listen" : "127.0.0.1:15001",
                "name" : "echo",
                "role" : "forward",
                "target" : null,
                "to" : "echo@db1"
              }
            ]

            """
        )
        XCTAssertEqual(
            ServicesText.render(services, style: .plain),
            """
            SERVICE   ROLE     LOCAL ADDRESS    ACCESS
            postgres  forward  127.0.0.1:15432  to postgres@db1
            echo      forward  127.0.0.1:15001  to echo@db1

            """
        )
    }

    func testServedJSON() throws {
        let services = ServiceInfo.entries(config: try ControlFixtures.config(), node: "db1")
        let decoded = try ControlJSON.decoder().decode([ServiceInfo].self, from: ControlJSON.encoder().encode(services))
        XCTAssertEqual(decoded, services)
        XCTAssertEqual(services.first?.allow, ["*"])
        XCTAssertTrue(try ControlJSON.text(services[2]).contains(#""allow" : [\#n    "app1"\#n  ]"#))
    }

    func testNothingServed() {
        XCTAssertEqual(ServicesText.render([], style: .plain), "this node serves no services and runs no forwards\n")
    }
}
