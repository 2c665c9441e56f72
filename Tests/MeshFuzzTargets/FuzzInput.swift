/// How a fuzz input is read by the channel targets: the first byte holds option bits for the
/// target plus, in its high nibble, how the rest is cut into reads; the rest is what the peer sends.
///
/// Cutting the bytes into reads matters: a parser that works on one whole buffer can still lose
/// track of a packet split across two `channelRead`s.
struct FuzzInput {
    /// The low four bits of the first byte, each a target-specific switch.
    let options: UInt8
    /// Bytes per `channelRead`; nil sends everything in one read.
    let chunkSize: Int?
    let payload: UnsafeRawBufferPointer

    /// Nil for an empty input (there is no option byte to read).
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return nil }
        self.options = first & 0x0F
        let shift = Int(first >> 4)
        self.chunkSize = shift == 0 ? nil : 1 << (shift - 1)
        self.payload = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
    }

    func option(_ bit: UInt8) -> Bool { self.options & (1 << bit) != 0 }

    /// The payload cut into reads of `chunkSize` bytes (one read when nil or when the payload is empty).
    var chunks: [UnsafeRawBufferPointer] {
        guard let size = self.chunkSize, self.payload.count > size else { return [self.payload] }
        return stride(from: 0, to: self.payload.count, by: size).map { start in
            UnsafeRawBufferPointer(rebasing: self.payload[start..<min(start + size, self.payload.count)])
        }
    }
}
