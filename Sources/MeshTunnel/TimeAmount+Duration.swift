import Foundation
import MeshConfig
import NIOCore

/// Bridges mesh.json's `Duration`s to NIO's `TimeAmount` and back, and prints them the way
/// mesh.json writes them; `until` turns a certificate's date into a timer's delay.
extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    var duration: Duration { .nanoseconds(self.nanoseconds) }

    var text: String { DurationText.format(self.duration) }

    /// From now until `date`; zero once it passed.
    static func until(_ date: Date) -> TimeAmount {
        .nanoseconds(Int64(max(0, date.timeIntervalSinceNow) * 1e9))
    }
}
