import NIOConcurrencyHelpers

/// The inbound connections still in their TLS handshake, in the order they were accepted, bounded by
/// `tunnel.max_pending_handshakes`.
///
/// When the table is full a new connection is not refused: it takes the slot of the oldest
/// connection that has not sent a single byte, or, if every pending connection has sent something,
/// of the oldest one. Refusing the newcomer would let anyone who opens `limit` silent connections
/// shut honest peers out for a whole handshake timeout; evicting instead means a silent flood can
/// never push out a peer that has sent its ClientHello, and a flood that does send bytes must open
/// `limit` connections within the few milliseconds an honest handshake takes.
final class PendingHandshakes: Sendable {
    /// Identifies one admitted connection.
    struct Ticket: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    private struct Entry {
        let ticket: Ticket
        var heard: Bool
        let evict: @Sendable () -> Void
    }

    private struct State {
        var entries: [Entry] = []
        var nextID: UInt64 = 0

        /// Entries stay sorted by id (appended in order, removed anywhere), so a lookup is a binary search.
        func index(of ticket: Ticket) -> Int? {
            var low = self.entries.startIndex
            var high = self.entries.endIndex
            while low < high {
                let middle = (low + high) / 2
                let id = self.entries[middle].ticket.id
                if id == ticket.id { return middle }
                if id < ticket.id { low = middle + 1 } else { high = middle }
            }
            return nil
        }
    }

    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        precondition(limit >= 1, "max_pending_handshakes is validated to be at least 1")
        self.limit = limit
    }

    /// How many connections are mid-handshake now.
    var count: Int { self.state.withLockedValue { $0.entries.count } }

    /// Admits a new connection. When the table was full, the evicted connection's `evict` has been
    /// called (outside the lock) before this returns, and `evicted` is true.
    func admit(evict: @escaping @Sendable () -> Void) -> (ticket: Ticket, evicted: Bool) {
        let (ticket, victim) = self.state.withLockedValue { state -> (Ticket, Entry?) in
            var victim: Entry? = nil
            if state.entries.count >= self.limit {
                let index = state.entries.firstIndex(where: { !$0.heard }) ?? state.entries.startIndex
                victim = state.entries.remove(at: index)
            }
            let ticket = Ticket(id: state.nextID)
            state.nextID &+= 1
            state.entries.append(Entry(ticket: ticket, heard: false, evict: evict))
            return (ticket, victim)
        }
        // Closing a channel may run its close callbacks inline; never under our lock.
        victim?.evict()
        return (ticket, victim != nil)
    }

    /// The connection sent its first bytes: evict it only after every silent one.
    func heard(_ ticket: Ticket) {
        self.state.withLockedValue { state in
            if let index = state.index(of: ticket) { state.entries[index].heard = true }
        }
    }

    /// The handshake ended (finished, failed or the connection closed): frees the slot. False when
    /// the slot was already gone (the connection was evicted, or settled before).
    @discardableResult
    func settle(_ ticket: Ticket) -> Bool {
        self.state.withLockedValue { state in
            guard let index = state.index(of: ticket) else { return false }
            state.entries.remove(at: index)
            return true
        }
    }
}
