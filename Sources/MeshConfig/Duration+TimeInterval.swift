import Foundation

extension Duration {
    /// The duration as Foundation counts it, for arithmetic with `Date`s (certificate validity).
    public var timeInterval: TimeInterval {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
