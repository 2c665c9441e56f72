import NIOCore

/// Sits on the client channel of a routed session and watches what the server sends the client
/// (the splice writes it here) until the session's BackendKeyData has gone by, so a later
/// CancelRequest can be routed to the node that issued the key. The bytes pass on unchanged, in the
/// same writes; once the scanner has an outcome (a key, ReadyForQuery without one, the server's
/// refusal, or a stream it cannot read) the watcher reports it and, at the next flush, removes
/// itself, so the rest of the session pays nothing.
public final class BackendKeyWatcher: ChannelOutboundHandler, RemovableChannelHandler {
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var scanner = BackendKeyScanner()
    private var reported = false
    private let report: (BackendKeyScanner.Outcome) -> Void

    /// - report: called once, on the channel's event loop, with the scanner's final outcome.
    public init(report: @escaping (BackendKeyScanner.Outcome) -> Void) {
        self.report = report
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !self.reported else { return context.write(data, promise: promise) }
        let outcome = self.scanner.scan(self.unwrapOutboundIn(data))
        context.write(data, promise: promise)
        if outcome == .needMoreData { return }
        self.reported = true
        self.report(outcome)
    }

    /// Leaves after passing on the flush, never inside `write`: a `writeAndFlush` calls this handler's
    /// `write` and then its `flush`, and a handler gone in between would swallow that flush.
    public func flush(context: ChannelHandlerContext) {
        context.flush()
        if self.reported { context.pipeline.syncOperations.removeHandler(context: context, promise: nil) }
    }
}

@available(*, unavailable)
extension BackendKeyWatcher: Sendable {}
