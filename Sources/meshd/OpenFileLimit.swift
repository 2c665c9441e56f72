import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Raises the soft open-file limit to the hard limit at start-up, as Go's runtime and nginx
/// (`worker_rlimit_nofile`) do. meshd holds a descriptor per tunnel, per side of every stream and per
/// connection still in its handshake; the usual soft limit of 1024 would run out under a few hundred
/// streams or a connection flood long before memory does, and accept() would then fail for honest
/// peers too. The hard limit is the administrator's ceiling (systemd's `LimitNOFILE=`), so we stay under it.
enum OpenFileLimit {
    /// What happened, for the start-up log.
    struct Outcome: CustomStringConvertible {
        var before: UInt64
        var after: UInt64
        var hard: UInt64
        var failure: String?

        var description: String {
            if let failure { return "open file limit stays \(before) (hard limit \(Self.text(hard))): \(failure)" }
            if after == before { return "open file limit \(after) (the hard limit is \(Self.text(hard)))" }
            return "open file limit raised from \(before) to \(after) (the hard limit)"
        }

        private static func text(_ value: UInt64) -> String {
            value == UInt64(rlim_t.max) ? "unlimited" : "\(value)"
        }
    }

    static func raiseToHardLimit() -> Outcome {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            return Outcome(before: 0, after: 0, hard: 0, failure: "getrlimit failed: \(String(cString: strerror(errno)))")
        }
        let before = UInt64(limit.rlim_cur)
        let hard = UInt64(limit.rlim_max)
        // RLIM_INFINITY (all ones): Linux refuses an unlimited soft limit for files; its real ceiling is fs.nr_open.
        let target = hard == UInt64(rlim_t.max) ? self.kernelCeiling() : hard
        guard target > before else { return Outcome(before: before, after: before, hard: hard) }
        limit.rlim_cur = rlim_t(target)
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            return Outcome(
                before: before,
                after: before,
                hard: hard,
                failure: "setrlimit to \(target) failed: \(String(cString: strerror(errno)))"
            )
        }
        return Outcome(before: before, after: target, hard: hard)
    }

    /// /proc/sys/fs/nr_open (1048576 by default), the most descriptors one process may have.
    private static func kernelCeiling() -> UInt64 {
        let text = (try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8)) ?? ""
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1_048_576
    }
}
