import XCTest

/// Base of the TLS suites that share one `TLSTestPKI`: made before the suite's first test (dozens of
/// P-256 keys and signatures), removed after its last.
class TLSPKITestCase: XCTestCase {
    nonisolated(unsafe) static var sharedPKI: TLSTestPKI!

    override class func setUp() {
        super.setUp()
        sharedPKI = try! TLSTestPKI()
    }

    override class func tearDown() {
        sharedPKI?.remove()
        sharedPKI = nil
        super.tearDown()
    }

    var pki: TLSTestPKI { Self.sharedPKI }
}
