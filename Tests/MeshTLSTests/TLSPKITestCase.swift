import XCTest

/// Base of the TLS suites that share one `TLSTestPKI`: made before the suite's first test (openssl
/// takes seconds for the whole set), removed after its last.
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
