import FuzzDriver
import MeshFuzzTargets

/// One input through the mesh.json loader (see `MeshConfigFuzzTarget`).
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    _ = MeshConfigFuzzTarget.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}

/// The executable's entry point under SwiftPM's debug-build name for `main` (see `runFuzzer`).
@_cdecl("FuzzMeshConfig_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, testOneInput)
}
