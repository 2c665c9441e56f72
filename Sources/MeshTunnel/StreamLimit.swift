/// `tunnel.max_streams_per_peer` applied to one peer: whether one more stream fits, and the number a
/// refusal names. Streams in both directions count, as `meshctl peers` shows them.
struct StreamLimit: Sendable {
    let maximum: Int
    let counters: PeerCounters

    func admitsOneMore() -> Bool {
        self.counters.streamsActive.load(ordering: .relaxed) < self.maximum
    }

    /// For the refusal's log line.
    var described: String { "tunnel.max_streams_per_peer=\(self.maximum)" }
}
