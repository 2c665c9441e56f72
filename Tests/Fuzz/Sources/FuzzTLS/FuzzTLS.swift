import FuzzDriver
import MeshFuzzTargets

/// One input through the TLS handler (see `TLSFuzzTarget`).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    _ = TLSFuzzTarget.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}

/// The executable's entry point under SwiftPM's debug-build name for `main` (see `runFuzzer`).
@_cdecl("FuzzTLS_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, testOneInput)
}
