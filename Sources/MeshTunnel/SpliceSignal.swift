import NIOCore

/// A message from one side of a splice to the other.
enum SpliceSignal: Equatable {
    /// Bytes the partner read, to be written and flushed here.
    case bytes([ByteBuffer])
    /// The partner's input ended cleanly: half-close our output.
    case end
    /// The partner died before finishing: reset our side.
    case abort
    /// The partner's channel can (or cannot) take more bytes: resume (or pause) our reads.
    case partnerWritable(Bool)
}
