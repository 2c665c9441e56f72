import Atomics

/// Traffic counters of one peer, bumped on the data path without locks and read by `meshctl`.
public final class PeerCounters: Sendable {
    let bytesSent = ManagedAtomic<UInt64>(0)
    let bytesReceived = ManagedAtomic<UInt64>(0)
    let streamsActive = ManagedAtomic<Int>(0)
    let streamsTotal = ManagedAtomic<UInt64>(0)
    let reconnects = ManagedAtomic<UInt64>(0)
    let reauthentications = ManagedAtomic<UInt64>(0)

    public init() {}

    func streamOpened() {
        self.streamsActive.wrappingIncrement(ordering: .relaxed)
        self.streamsTotal.wrappingIncrement(ordering: .relaxed)
    }

    func streamClosed() {
        self.streamsActive.wrappingDecrement(ordering: .relaxed)
    }

    /// Copies the counters into a status snapshot.
    func fill(_ status: inout PeerStatus) {
        status.bytesSent = self.bytesSent.load(ordering: .relaxed)
        status.bytesReceived = self.bytesReceived.load(ordering: .relaxed)
        status.streamsActive = self.streamsActive.load(ordering: .relaxed)
        status.streamsTotal = self.streamsTotal.load(ordering: .relaxed)
        status.reconnects = self.reconnects.load(ordering: .relaxed)
        status.reauthentications = self.reauthentications.load(ordering: .relaxed)
    }
}
