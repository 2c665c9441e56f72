import NIOHTTP2

/// One tunnel's control stream (see `ReverseStreams`): its ID once open, the line being read, and,
/// on the accepting side, the streams asked of the dialer and not yet arrived.
struct ControlStream {
    private(set) var id: HTTP2StreamID?
    var lines = LineBuffer()
    private var nextRequest: UInt64 = 1
    private var waiting: [UInt64: TunnelStream] = [:]
    /// Requests made before the control stream opened, in the order they were made.
    private var queued: [UInt64] = []

    var isOpen: Bool { self.id != nil }

    /// Whether a stream asked of the dialer has neither arrived nor been refused or given up.
    var hasWaitingRequests: Bool { !self.waiting.isEmpty }

    /// Records a request for a stream; returns the line to send, or nil while the control stream
    /// is not open yet (it is sent by `opened`).
    mutating func request(_ stream: TunnelStream) -> String? {
        let id = self.nextRequest
        self.nextRequest += 1
        stream.phase = .requested(reverseID: id, held: stream.takeHeld())
        self.waiting[id] = stream
        guard self.id != nil else {
            self.queued.append(id)
            return nil
        }
        return ReverseStreams.openLine(id: id, service: stream.service)
    }

    /// The control stream is open: returns the lines of the requests that waited for it.
    @discardableResult
    mutating func opened(_ id: HTTP2StreamID) -> [String] {
        self.id = id
        let lines = self.queued.compactMap { request in
            self.waiting[request].map { ReverseStreams.openLine(id: request, service: $0.service) }
        }
        self.queued = []
        return lines
    }

    /// The stream (or refusal) for request `id` arrived: the waiting stream, if it still waits.
    mutating func arrived(_ id: UInt64) -> TunnelStream? {
        self.waiting.removeValue(forKey: id)
    }

    /// Forgets request `id`; whether it was still waiting.
    mutating func cancel(_ id: UInt64) -> Bool {
        self.waiting.removeValue(forKey: id) != nil
    }

    mutating func closed() {
        self.id = nil
    }

    /// Every request still waiting, forgotten (the tunnel closed).
    mutating func takeAllRequests() -> [TunnelStream] {
        let all = Array(self.waiting.values)
        self.waiting = [:]
        self.queued = []
        return all
    }
}
