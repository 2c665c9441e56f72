/// Which hosts a `same_address` service may use: IPv4 literals in 127.0.0.0/8. Other nodes'
/// meshd listen on these addresses in plaintext, so they must never be reachable from the network,
/// and each node must have many of them (one per member of each such service).
enum SameAddressHost {
    static func isLoopbackIPv4(_ host: String) -> Bool {
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber } && Int(part)! <= 255
        }
    }
}
