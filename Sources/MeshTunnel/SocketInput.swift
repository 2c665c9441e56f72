/// The input of a local socket meshd carries (`StreamSocket`, `SpliceHandler`): it is read only
/// while the far side can take the bytes, so a slow reader anywhere slows the writer and nothing
/// buffers without bound.
enum SocketInput: Equatable {
    /// The far side can take bytes: reads pass.
    case flowing
    /// The far side cannot take bytes (or is not there yet); `readHeld`: NIO asked for a read
    /// meanwhile, to be done once it can.
    case paused(readHeld: Bool)
    /// The socket's input ended cleanly and the far side was told.
    case ended
    /// An error ended the socket: its closing is not a clean end of input.
    case failed

    /// Whether the input has not ended either way.
    var isOpen: Bool {
        switch self {
        case .flowing, .paused: true
        case .ended, .failed: false
        }
    }

    /// NIO asks for a read: whether to pass it on now (else it is held, or moot).
    mutating func readRequested() -> Bool {
        switch self {
        case .flowing: return true
        case .paused: self = .paused(readHeld: true)
        case .ended, .failed: break
        }
        return false
    }

    /// The far side can (or cannot) take bytes: whether a held read must go out now.
    mutating func farSide(canTake: Bool) -> Bool {
        switch (self, canTake) {
        case (.paused(let readHeld), true):
            self = .flowing
            return readHeld
        case (.flowing, false):
            self = .paused(readHeld: false)
        case (.paused, false), (.flowing, true), (.ended, _), (.failed, _):
            break
        }
        return false
    }
}
