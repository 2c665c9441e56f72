import NIOConcurrencyHelpers
import NIOCore

/// Asks every event loop to run a no-op task and reports which ones did not within a deadline:
/// a loop that cannot run a no-op cannot serve its connections either.
public struct LoopProbe: Sendable {
    public let loops: [EventLoop]

    public init(group: EventLoopGroup) {
        self.loops = Array(group.makeIterator())
    }

    /// Indices (into `loops`) of the loops that had not run their no-op when `deadline` passed;
    /// empty when all answered. Never waits on a stuck loop longer than `deadline`.
    public func unanswered(within deadline: Duration) async -> [Int] {
        let pending = NIOLockedValueBox(Set(self.loops.indices))
        return await withCheckedContinuation { continuation in
            let outcome = FirstAnswer(continuation)
            // The timer runs on Swift's global executor, never on an event loop it is judging.
            outcome.timer = Task {
                try? await Task.sleep(for: deadline)
                guard !Task.isCancelled else { return }
                outcome.resume(pending.withLockedValue { $0.sorted() })
            }
            for (index, loop) in self.loops.enumerated() {
                loop.execute {
                    let left = pending.withLockedValue { pending in
                        pending.remove(index)
                        return pending.count
                    }
                    if left == 0 { outcome.resume([]) }
                }
            }
        }
    }
}

/// Resumes the probe's continuation once, with whichever comes first: the last loop's answer or
/// the timer (which it then cancels).
private final class FirstAnswer: Sendable {
    private struct State {
        var continuation: CheckedContinuation<[Int], Never>?
        var timer: Task<Void, Never>?
    }

    private let state: NIOLockedValueBox<State>

    init(_ continuation: CheckedContinuation<[Int], Never>) {
        self.state = NIOLockedValueBox(State(continuation: continuation))
    }

    var timer: Task<Void, Never>? {
        get { self.state.withLockedValue { $0.timer } }
        set { self.state.withLockedValue { $0.timer = newValue } }
    }

    func resume(_ unanswered: [Int]) {
        let (continuation, timer) = self.state.withLockedValue { state in
            defer { state = State() }
            return (state.continuation, state.timer)
        }
        timer?.cancel()
        continuation?.resume(returning: unanswered)
    }
}
