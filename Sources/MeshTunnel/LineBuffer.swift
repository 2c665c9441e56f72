import NIOCore

/// Splits a byte stream into newline-terminated lines, bounded in length.
struct LineBuffer {
    private var pending = ByteBuffer()

    /// Appends bytes and returns the complete lines, or nil when a line exceeds the bound.
    mutating func append(_ bytes: ByteBuffer) -> [String]? {
        var bytes = bytes
        self.pending.writeBuffer(&bytes)
        var lines: [String] = []
        while let index = self.pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = index - self.pending.readerIndex
            lines.append(self.pending.readString(length: length) ?? "")
            self.pending.moveReaderIndex(forwardBy: 1)
        }
        self.pending.discardReadBytes()
        return self.pending.readableBytes > ReverseStreams.maxLine ? nil : lines
    }
}
