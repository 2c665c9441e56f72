extension MeshNode {
    /// What a reload changed, for the log line and `meshctl reload`.
    public struct ReloadSummary: Sendable, CustomStringConvertible {
        public var addedPeers: [String] = []
        public var removedPeers: [String] = []
        public var addedForwards: [String] = []
        public var removedForwards: [String] = []
        public var revokedPeers: [String] = []
        /// Forwards that replace a removed one on the same address and could not open after it.
        public var failedForwards: [String] = []

        public var description: String {
            var parts: [String] = []
            if !self.addedPeers.isEmpty { parts.append("peers added: \(self.addedPeers.joined(separator: ", "))") }
            if !self.removedPeers.isEmpty { parts.append("peers removed: \(self.removedPeers.joined(separator: ", "))") }
            if !self.addedForwards.isEmpty { parts.append("forwards added: \(self.addedForwards.joined(separator: ", "))") }
            if !self.removedForwards.isEmpty { parts.append("forwards removed: \(self.removedForwards.joined(separator: ", "))") }
            if !self.revokedPeers.isEmpty { parts.append("revoked peers disconnected: \(self.revokedPeers.joined(separator: ", "))") }
            if !self.failedForwards.isEmpty { parts.append("forwards that failed to open: \(self.failedForwards.joined(separator: ", "))") }
            return parts.isEmpty ? "no tunnel or forward changed" : parts.joined(separator: "; ")
        }
    }

    /// A reload that cannot be applied while running (see `ReloadPlan`).
    public struct ReloadError: Error, CustomStringConvertible {
        public var description: String
    }
}
