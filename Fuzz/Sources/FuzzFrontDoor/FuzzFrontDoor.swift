import MeshFuzzTargets

/// libFuzzer's entry point: one input, a balancer's front door (see `FrontDoorFuzzTarget`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrontDoor(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = FrontDoorFuzzTarget.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
