import Foundation
import NIOConcurrencyHelpers

/// The one place that holds every peer's link state; links write it, `meshctl` and metrics read it.
public final class PeerTable: Sendable {
    private struct Entry {
        var status: PeerStatus
        let counters: PeerCounters
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])

    public init() {}

    func register(_ status: PeerStatus, counters: PeerCounters) {
        self.entries.withLockedValue { $0[status.name] = Entry(status: status, counters: counters) }
    }

    func remove(_ name: String) {
        self.entries.withLockedValue { _ = $0.removeValue(forKey: name) }
    }

    func update(_ name: String, _ body: (inout PeerStatus) -> Void) {
        self.entries.withLockedValue { entries in
            guard var entry = entries[name] else { return }
            body(&entry.status)
            entries[name] = entry
        }
    }

    /// A consistent snapshot of every peer, sorted by name.
    public func snapshot() -> [PeerStatus] {
        self.entries.withLockedValue { entries in
            entries.values.map { entry in
                var status = entry.status
                entry.counters.fill(&status)
                return status
            }.sorted { $0.name < $1.name }
        }
    }

    public func status(of name: String) -> PeerStatus? {
        self.snapshot().first { $0.name == name }
    }
}
