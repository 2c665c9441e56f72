import NIOCore

/// Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"):
/// the n-th retry waits a uniformly random time in [0, min(max, base * 2^n)], so a mesh that lost a
/// node does not redial it in lockstep.
struct Backoff: Sendable {
    let base: TimeAmount
    let max: TimeAmount

    func delay(attempt: Int) -> TimeAmount {
        let shift = Swift.min(attempt, 30)
        let ceiling = Swift.min(self.max.nanoseconds, self.base.nanoseconds &* (Int64(1) << shift))
        guard ceiling > 0 else { return .zero }
        return .nanoseconds(Int64.random(in: 0...ceiling))
    }
}
