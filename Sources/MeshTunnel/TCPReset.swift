import NIOCore

/// Resets a TCP connection instead of closing it: SO_LINGER {on, 0} makes close() send RST, so the
/// client sees ECONNRESET rather than an EOF that looks like a complete response.
public enum TCPReset {
    public static func reset(_ channel: Channel) {
        guard let provider = channel as? SocketOptionProvider else {
            channel.close(promise: nil)  // Unix sockets have no RST; closing is all there is.
            return
        }
        provider.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
