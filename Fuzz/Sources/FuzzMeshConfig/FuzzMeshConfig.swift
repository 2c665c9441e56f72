import MeshFuzzTargets

/// libFuzzer's entry point: one input, the mesh.json loader (see `MeshConfigFuzzTarget`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMeshConfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = MeshConfigFuzzTarget.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
