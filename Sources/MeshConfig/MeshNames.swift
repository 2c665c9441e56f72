/// The naming rules for mesh, node, service and balancer names, shared by the loader and `MeshIdentity`.
enum MeshNames {
    /// A SPIFFE trust domain: lowercase letters, digits, '.', '-' and '_' (at most 255 characters).
    static func isValidTrustDomain(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255
            && name.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "a"..."z", "0"..."9", ".", "-", "_": true
                default: false
                }
            }
    }

    /// 1-63 characters of [a-z0-9_-] starting with a letter or digit: safe in certificate SANs,
    /// URI paths, Prometheus labels and systemd listener names.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.unicodeScalars.count <= 63 else { return false }
        let startsWell: Bool
        switch first {
        case "a"..."z", "0"..."9": startsWell = true
        default: startsWell = false
        }
        return startsWell
            && name.unicodeScalars.allSatisfy { scalar in
                switch scalar {
                case "a"..."z", "0"..."9", "_", "-": true
                default: false
                }
            }
    }

    static let nameRule = "use 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
}
