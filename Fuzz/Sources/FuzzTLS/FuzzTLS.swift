import MeshFuzzTargets

/// libFuzzer's entry point: one input, the TLS handler (see `TLSFuzzTarget`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTLS(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    _ = TLSFuzzTarget.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
