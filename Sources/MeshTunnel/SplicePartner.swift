import NIOCore

/// A reference to the other side's handler, used only on that handler's event loop.
struct SplicePartner: @unchecked Sendable {
    private let handler: SpliceHandler

    init(_ handler: SpliceHandler) {
        self.handler = handler
    }

    func send(_ signal: SpliceSignal) {
        if self.handler.loop.inEventLoop {
            self.handler.receive(signal)
        } else {
            let handler = self.handler
            handler.loop.execute { handler.receive(signal) }
        }
    }
}
