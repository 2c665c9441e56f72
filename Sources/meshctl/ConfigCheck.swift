import Foundation
import MeshConfig
import MeshControlModel
import MeshTLS

/// The checks behind `meshctl check`, all offline: mesh.json, its CA and CRL files, and each chosen
/// node's certificate and key, with the OpenSSL checks a peer's handshake makes (chain to the CA,
/// identity, revocation, dates) plus that the key belongs to the certificate.
struct ConfigCheck {
    var configPath: String
    /// The node to check; nil picks the node named by a single `tls.cert`, or every node whose file exists.
    var node: String?
    var now: Date

    /// Below this many days left, a certificate or CRL is a warning (the same threshold as `meshctl status`).
    static let warningDays = AgentStatus.certificateWarningDays

    func run() -> CheckReport {
        let config: MeshConfiguration
        do {
            config = try MeshConfiguration.load(path: self.configPath)
        } catch {
            // MeshConfig stops at the first problem, so there is exactly one to print.
            var report = CheckReport(configFile: self.configPath)
            report.add(.error, error.file, jsonPath: error.path, error.message)
            return report
        }
        let file = config.directory + "/" + (config.file as NSString).lastPathComponent
        var report = CheckReport(configFile: file)
        let forwards = config.forwards.count
        let services = config.services.count
        report.add(
            .ok,
            file,
            "mesh \"\(config.mesh)\", \(Self.count(config.nodes.count, "node")), \(Self.count(services, "service")), "
                + Self.count(forwards, "forward")
        )

        guard let nodes = self.chooseNodes(config, file: file, into: &report) else { return report }
        report.nodes = nodes

        var authorities: [String: Certificate?] = [:]
        var revocationLists: [String: Bool] = [:]
        for node in nodes {
            let files = config.tlsFiles(for: node)
            if authorities[files.ca] == nil {
                authorities[files.ca] = self.checkAuthority(files.ca, mesh: config.mesh, into: &report)
            }
            let authority = authorities[files.ca] ?? nil
            if let crl = files.crl, revocationLists[crl] == nil {
                revocationLists[crl] = self.checkRevocationList(crl, authority: authority, caFile: files.ca, into: &report)
            }
            self.checkNode(
                node,
                files: files,
                mesh: config.mesh,
                authorityUsable: authority != nil,
                revocationListUsable: files.crl.flatMap { revocationLists[$0] } ?? false,
                into: &report
            )
            self.checkBalancerTLS(config, node: node, into: &report)
        }
        return report
    }

    /// Each balancer on `node` with a `tls` block: its certificate and key load as meshd loads them.
    private func checkBalancerTLS(_ config: MeshConfiguration, node: String, into report: inout CheckReport) {
        for balancer in config.balancers(on: node) {
            guard let files = config.tlsFiles(of: balancer, on: node) else { continue }
            do {
                _ = try FrontDoorTLS.context(for: balancer, in: config, node: node)
                report.add(.ok, files.cert, node: node, "balancer \(balancer.name): front-door certificate and key load")
            } catch {
                report.add(.error, files.cert, node: node, jsonPath: "balancers.\(balancer.name).tls", "\(error)")
            }
        }
    }

    // MARK: Which nodes

    /// `--node`, else the node a single `tls.cert` (no `{node}`) names, else every node whose file exists.
    private func chooseNodes(_ config: MeshConfiguration, file: String, into report: inout CheckReport) -> [String]? {
        let declared = config.sortedNodeNames.joined(separator: ", ")
        if let node = self.node {
            guard config.nodes[node] != nil else {
                report.add(.error, file, jsonPath: "nodes", "no node \"\(node)\" (declared: \(declared)) — pass --node with one of them")
                return nil
            }
            return [node]
        }
        if !config.tls.cert.contains("{node}") {
            let path = config.tlsFiles(for: "").cert
            let info: CertificateInfo
            do {
                info = try CertificateInfo(pemFile: path)
            } catch {
                report.add(.error, path, Self.message(error, file: path))
                return nil
            }
            let named = info.uriSANs.lazy.compactMap(MeshIdentity.init(uri:)).first {
                $0.mesh == config.mesh && config.nodes[$0.node] != nil
            }
            guard let named else {
                let sans = info.uriSANs.isEmpty ? "no URI SAN" : "URI SANs " + info.uriSANs.joined(separator: ", ")
                report.add(
                    .error,
                    path,
                    "names no declared node of mesh \"\(config.mesh)\" (\(sans); declared: \(declared)) — pass --node NAME, or issue this node's certificate with 'meshctl pki issue NODE'"
                )
                return nil
            }
            return [named.node]
        }
        let present = config.sortedNodeNames.filter { FileManager.default.fileExists(atPath: config.tlsFiles(for: $0).cert) }
        guard !present.isEmpty else {
            let template = config.tlsFiles(for: "{node}").cert
            report.add(
                .error,
                file,
                jsonPath: "tls.cert",
                "no certificate file exists for any declared node (looked for \(template) with {node} = \(declared)) — pass --node NAME, or issue certificates with 'meshctl pki issue NODE --dir DIR'"
            )
            return nil
        }
        return present
    }

    // MARK: CA and CRL

    /// Checks the CA certificate; returns it when it can anchor chains (even if expiring).
    private func checkAuthority(_ path: String, mesh: String, into report: inout CheckReport) -> Certificate? {
        let authority: Certificate
        do {
            authority = try Certificate(pemFile: path, missingHint: "fix tls.ca in mesh.json or copy the mesh's ca.pem there")
        } catch {
            report.add(.error, path, Self.message(error, file: path))
            return nil
        }
        let info = authority.info
        var problems = false
        if !info.isCA {
            report.add(
                .error,
                path,
                "\(info.subject) is not a CA certificate (no basicConstraints CA:TRUE) — tls.ca must be the mesh's CA, e.g. from 'meshctl pki init'"
            )
            problems = true
        }
        if let domain = info.spiffeTrustDomain, domain != mesh {
            report.add(
                .warning,
                path,
                "this CA is for mesh \"\(domain)\" (URI SAN spiffe://\(domain)), but mesh.json says \"\(mesh)\" — is tls.ca the right file?"
            )
            problems = true
        }
        problems =
            self.checkDates(
                info,
                path: path,
                node: nil,
                what: "the CA certificate",
                renew: "create a new CA and reissue every node ('meshctl pki init --force')",
                into: &report
            ) || problems
        if !problems {
            report.add(.ok, path, "CA \(info.subject), valid until \(HumanUnits.date(info.notAfter)) (\(info.daysLeft(at: self.now)) days)")
        }
        return authority
    }

    /// Checks the CRL file; returns true when revocation can be checked against it.
    private func checkRevocationList(_ path: String, authority: Certificate?, caFile: String, into report: inout CheckReport) -> Bool {
        let list: RevocationList
        do {
            list = try RevocationList(pemFile: path, missingHint: "fix tls.crl in mesh.json or copy the mesh's crl.pem there")
        } catch {
            report.add(.error, path, Self.message(error, file: path))
            return false
        }
        let info = list.info
        if let authority, !list.isSigned(by: authority) {
            report.add(
                .error,
                path,
                "this CRL is not signed by the CA in \(caFile), so meshd refuses to start — publish the CRL of this mesh's CA ('meshctl pki revoke') or fix tls.crl"
            )
            return false
        }
        let number = info.number.map { " #\($0)" } ?? ""
        var problems = false
        if let next = info.nextUpdate {
            let daysLeft = Int((next.timeIntervalSince(self.now) / 86_400).rounded(.down))
            if next < self.now {
                report.add(
                    .error,
                    path,
                    "CRL\(number) went stale on \(HumanUnits.date(next)) (nextUpdate), so meshd refuses to start — publish a fresh one from the CA ('meshctl pki revoke' re-signs it)"
                )
                problems = true
            } else if daysLeft < Self.warningDays {
                report.add(
                    .warning,
                    path,
                    "CRL\(number) goes stale on \(HumanUnits.date(next)) (\(daysLeft) days left); meshd will refuse it then — publish a fresh one from the CA"
                )
                problems = true
            }
        }
        if !problems {
            let next = info.nextUpdate.map { ", next update \(HumanUnits.date($0))" } ?? ""
            report.add(.ok, path, "CRL\(number) signed by the CA, \(Self.count(info.revoked.count, "revoked certificate"))\(next)")
        }
        return authority != nil
    }

    // MARK: A node's certificate and key

    private func checkNode(
        _ node: String,
        files: TLSFiles,
        mesh: String,
        authorityUsable: Bool,
        revocationListUsable: Bool,
        into report: inout CheckReport
    ) {
        let issue = "'meshctl pki issue \(node) --dir DIR --force'"
        let certificate: Certificate
        do {
            certificate = try Certificate(pemFile: files.cert, missingHint: "issue one with \(issue) or fix tls.cert in mesh.json")
        } catch {
            report.add(.error, files.cert, node: node, Self.message(error, file: files.cert))
            return
        }
        let info = certificate.info
        let before = report.findings.count
        let identity = MeshIdentity(mesh: mesh, node: node).uri

        if !info.uriSANs.contains(identity) {
            let has = info.uriSANs.isEmpty ? "has no URI SAN" : "is for \(info.uriSANs.joined(separator: ", "))"
            report.add(
                .error,
                files.cert,
                node: node,
                "this certificate \(has), but this node is \(identity) — peers would refuse it; issue one with \(issue)"
            )
        }

        do {
            if try !certificate.matchesKey(inFile: files.key) {
                report.add(
                    .error,
                    files.key,
                    node: node,
                    "this key does not match the certificate \(files.cert) — pair each certificate with the key it was issued for, or issue both anew with \(issue)"
                )
            } else if let mode = Self.mode(files.key), mode & 0o077 != 0 {
                report.add(
                    .warning,
                    files.key,
                    node: node,
                    "the private key is readable by group or others (mode 0\(String(mode, radix: 8))) — 'chmod 600 \(files.key)'"
                )
            }
        } catch {
            report.add(.error, files.key, node: node, Self.message(error, file: files.key))
        }

        var chained = false
        if authorityUsable {
            chained = self.checkChain(node, files: files, issue: issue, into: &report)
        }
        let revocationChecked = chained && revocationListUsable && files.crl != nil
        if revocationChecked, let crl = files.crl {
            self.checkRevocation(node, files: files, crl: crl, serial: info.serial, issue: issue, into: &report)
        }
        _ = self.checkDates(info, path: files.cert, node: node, what: "the certificate", renew: "renew it with \(issue)", into: &report)

        if report.findings.count == before {
            var passed = chained ? ["chains to \(files.ca)"] : []
            passed += ["identity \(identity)", "key \(files.key) matches"]
            if revocationChecked { passed.append("not revoked") }
            passed.append("valid until \(HumanUnits.date(info.notAfter)) (\(info.daysLeft(at: self.now)) days)")
            report.add(.ok, files.cert, node: node, passed.joined(separator: ", "))
        }
    }

    /// OpenSSL's chain verification for both TLS roles, dates aside (they are checked on their own).
    private func checkChain(_ node: String, files: TLSFiles, issue: String, into report: inout CheckReport) -> Bool {
        for purpose in ChainVerifier.Purpose.allCases {
            let outcome: ChainVerifier.Outcome
            do {
                outcome = try ChainVerifier.verify(certificateFile: files.cert, caFile: files.ca, purpose: purpose, at: nil)
            } catch {
                report.add(.error, files.cert, node: node, Self.message(error, file: files.cert))
                return false
            }
            switch outcome {
            case .verified, .revoked:
                continue
            case .rejected(let reason, let depth):
                let role = purpose == .tlsClient ? "dialing peers (TLS client)" : "accepting peers (TLS server)"
                let at = depth == 0 ? "" : " at chain depth \(depth)"
                report.add(
                    .error,
                    files.cert,
                    node: node,
                    "does not verify against the CA \(files.ca) for \(role): \(reason)\(at) — issue it from this mesh's CA with \(issue)"
                )
                return false
            }
        }
        return true
    }

    private func checkRevocation(
        _ node: String,
        files: TLSFiles,
        crl: String,
        serial: String,
        issue: String,
        into report: inout CheckReport
    ) {
        do {
            switch try ChainVerifier.verify(certificateFile: files.cert, caFile: files.ca, crlFile: crl, purpose: .tlsClient, at: nil) {
            case .verified:
                break
            case .revoked:
                report.add(
                    .error,
                    files.cert,
                    node: node,
                    "revoked by \(crl) (serial \(serial)); peers refuse it — issue a new certificate with \(issue) and reload meshd"
                )
            case .rejected(let reason, _):
                report.add(.error, files.cert, node: node, "revocation cannot be checked against \(crl): \(reason)")
            }
        } catch {
            report.add(.error, crl, node: node, Self.message(error, file: crl))
        }
    }

    /// Not yet valid or expired is an error, fewer than `warningDays` left a warning. True if anything was reported.
    private func checkDates(
        _ info: CertificateInfo,
        path: String,
        node: String?,
        what: String,
        renew: String,
        into report: inout CheckReport
    ) -> Bool {
        let daysLeft = info.daysLeft(at: self.now)
        if self.now < info.notBefore {
            report.add(
                .error,
                path,
                node: node,
                "\(what) is not valid before \(HumanUnits.date(info.notBefore)) — check this machine's clock, or \(renew)"
            )
        } else if info.notAfter < self.now {
            report.add(.error, path, node: node, "\(what) expired on \(HumanUnits.date(info.notAfter)) — \(renew)")
        } else if daysLeft < Self.warningDays {
            report.add(
                .warning,
                path,
                node: node,
                "\(what) expires on \(HumanUnits.date(info.notAfter)) (\(daysLeft) days left) — \(renew)"
            )
        } else {
            return false
        }
        return true
    }

    // MARK: Helpers

    /// The error's text without a leading "FILE: ", since the finding names the file already.
    static func message(_ error: Error, file: String) -> String {
        let text = "\(error)"
        return text.hasPrefix(file + ": ") ? String(text.dropFirst(file.count + 2)) : text
    }

    private static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    private static func count(_ n: Int, _ noun: String) -> String {
        "\(n) \(noun)\(n == 1 ? "" : "s")"
    }
}
