import Foundation
import MeshTLS

/// One node's PKI files as one tar archive for `tar -C / -xpf`: `etc/meshd/pki/` with the CA
/// bundle, the CRL and the node's certificate and key, under the names mesh.json's `tls` paths use
/// (`pki/ca.pem`, `pki/crl.pem`, `pki/{node}.pem`, `pki/{node}.key`, relative to /etc/meshd).
/// Nothing else: never the CA key.
///
/// Written by GNU tar, which sets owners by name and id without looking either up, so the CA's
/// machine needs no `meshd` group. Extracting as root, tar maps the names to the node's own ids:
/// group `meshd` where the package made it, else the stored id 0 (root), never a stranger's group.
/// No entry for `etc/` or `etc/meshd/`, so extraction cannot change those directories' modes.
struct NodeBundle {
    /// Where the files land on the node, relative to `/`.
    static let directory = "etc/meshd/pki"

    /// One file in the archive: its name there, where it is read from, and its mode.
    struct Member {
        var name: String
        var source: String
        var mode: Int
    }

    let pki: PKIDirectory
    let node: String

    /// Public files 0644 (the directory keeps strangers out), the key 0640, the directory 0750;
    /// all root:meshd, so meshd reads them and cannot change them.
    var members: [Member] {
        [
            Member(name: "ca.pem", source: self.pki.caCertificate, mode: 0o644),
            Member(name: "crl.pem", source: self.pki.revocationList, mode: 0o644),
            Member(name: "\(self.node).pem", source: self.pki.certificate(node: self.node), mode: 0o644),
            Member(name: "\(self.node).key", source: self.pki.key(node: self.node), mode: 0o640),
        ]
    }

    /// `DIR/NODE-bundle.tar`.
    var archivePath: String { "\(self.pki.path)/\(self.node)-bundle.tar" }

    /// Throws, naming the file, when one the bundle needs is missing; `node`: the node's own too.
    func requireSources(node: Bool) throws {
        let needed = node ? self.members : self.members.filter { $0.name == "ca.pem" || $0.name == "crl.pem" }
        for member in needed where !FileManager.default.fileExists(atPath: member.source) {
            throw PKIError("\(member.source) does not exist — a node bundle needs it (run 'meshctl pki init' first)")
        }
    }

    /// Writes the archive (mode 0600: it holds a private key), replacing an older one.
    func write() throws {
        try self.requireSources(node: true)
        let fileManager = FileManager.default
        // The key's copy is staged beside the CA, in a directory only this user can enter.
        let stage = "\(self.pki.path)/.\(self.node)-bundle.\(ProcessInfo.processInfo.processIdentifier)"
        try fileManager.createDirectory(atPath: stage, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? fileManager.removeItem(atPath: stage) }
        let target = "\(stage)/\(Self.directory)"
        try fileManager.createDirectory(atPath: target, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for member in self.members {
            let copy = "\(target)/\(member.name)"
            try fileManager.copyItem(atPath: member.source, toPath: copy)
            try fileManager.setAttributes([.posixPermissions: member.mode], ofItemAtPath: copy)
        }
        try fileManager.setAttributes([.posixPermissions: 0o750], ofItemAtPath: target)

        let partial = self.archivePath + ".partial"
        try? fileManager.removeItem(atPath: partial)
        guard fileManager.createFile(atPath: partial, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw PKIError("\(partial): cannot create the archive here; check the directory's permissions")
        }
        defer { try? fileManager.removeItem(atPath: partial) }
        try self.runTar([
            "--create", "--format=ustar", "--file", partial, "--directory", stage,
            "--owner=root:0", "--group=meshd:0", "--sort=name", Self.directory,
        ])
        if fileManager.fileExists(atPath: self.archivePath) { try fileManager.removeItem(atPath: self.archivePath) }
        try fileManager.moveItem(atPath: partial, toPath: self.archivePath)
    }

    private func runTar(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["tar"] + arguments
        let errors = Pipe()
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw PKIError("cannot run tar (GNU tar, Debian's 'tar' package): \(error)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw PKIError("tar \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
        }
    }
}
