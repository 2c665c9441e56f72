import ArgumentParser
import Foundation
import MeshControlModel
import MeshTLS

/// `meshctl pki show`: describes a certificate or a CRL file, for people or (with --json) for scripts.
struct PKIShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Describe a PEM certificate (ca.pem, NODE.pem) or CRL (crl.pem).",
        discussion: """
            Certificate: subject, SANs, issuer, serial, validity, days left, SHA-256 fingerprint (as \
            'openssl x509 -fingerprint -sha256' prints it). CRL: issuer, number, last and next update, \
            revoked serials.
            """
    )

    @Argument(help: "The PEM file to describe.")
    var file: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let now = Date()
        switch try PKIDocument(pemFile: file) {
        case .certificate(let info):
            if json {
                try printJSON(CertificateReport(file: file, info: info, daysLeft: info.daysLeft(at: now)))
            } else {
                printCertificate(info, now: now)
            }
        case .revocationList(let info):
            if json {
                try printJSON(RevocationListReport(file: file, info: info))
            } else {
                printRevocationList(info, now: now)
            }
        }
    }

    private func printCertificate(_ info: CertificateInfo, now: Date) {
        let sans = info.uriSANs.map { "URI:\($0)" } + info.dnsSANs.map { "DNS:\($0)" }
        let daysLeft = info.daysLeft(at: now)
        let state =
            now < info.notBefore
            ? " (not yet valid)"
            : now > info.notAfter
                ? " (expired)"
                : daysLeft < 14 ? " (renew soon)" : ""
        print("\(file): \(info.isCA ? "CA certificate" : "certificate")")
        printRows([
            ("subject", info.subject),
            ("SANs", sans.isEmpty ? "none" : sans.joined(separator: ", ")),
            ("issuer", info.issuer),
            ("serial", info.serial),
            ("not before", HumanUnits.date(info.notBefore)),
            ("not after", HumanUnits.date(info.notAfter)),
            ("days left", "\(daysLeft)\(state)"),
            ("SHA-256", info.sha256Fingerprint),
        ])
    }

    private func printRevocationList(_ info: RevocationListInfo, now: Date) {
        let stale = info.nextUpdate.map { now > $0 } ?? false
        print("\(file): CRL\(info.number.map { " #\($0)" } ?? "")")
        var rows = [
            ("issuer", info.issuer),
            ("last update", HumanUnits.date(info.lastUpdate)),
            ("next update", (info.nextUpdate.map(HumanUnits.date) ?? "none") + (stale ? " (expired: re-sign it)" : "")),
            ("revoked", info.revoked.isEmpty ? "none" : "\(info.revoked.count)"),
        ]
        for entry in info.revoked {
            rows.append(("", "\(entry.serial)  revoked \(HumanUnits.date(entry.revocationDate))"))
        }
        printRows(rows)
    }

    private func printRows(_ rows: [(String, String)]) {
        let width = rows.map(\.0.count).max() ?? 0
        for (label, value) in rows {
            print("  " + label.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
        }
    }

    private func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

/// `pki show --json` for a certificate: the certificate's fields plus the file and the days left now.
private struct CertificateReport: Encodable {
    let kind = "certificate"
    let file: String
    let info: CertificateInfo
    let daysLeft: Int

    enum CodingKeys: String, CodingKey { case kind, file, daysLeft }

    func encode(to encoder: any Encoder) throws {
        try info.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(file, forKey: .file)
        try container.encode(daysLeft, forKey: .daysLeft)
    }
}

/// `pki show --json` for a CRL: the CRL's fields plus the file.
private struct RevocationListReport: Encodable {
    let kind = "crl"
    let file: String
    let info: RevocationListInfo

    enum CodingKeys: String, CodingKey { case kind, file }

    func encode(to encoder: any Encoder) throws {
        try info.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .kind)
        try container.encode(file, forKey: .file)
    }
}
