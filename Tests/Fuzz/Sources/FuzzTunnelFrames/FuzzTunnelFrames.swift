import FuzzDriver
import MeshFuzzTargets

/// One input through a tunnel's HTTP/2 frame handling (see `TunnelFramesFuzzTarget`).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    _ = TunnelFramesFuzzTarget.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}

/// The executable's entry point under SwiftPM's debug-build name for `main` (see `runFuzzer`).
@_cdecl("FuzzTunnelFrames_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, testOneInput)
}
