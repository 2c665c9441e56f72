import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP/1.1 request on a connection of its own, within one deadline from connect to the last
/// byte of the response: how `meshctl` reads the control socket and a database node's meshd reads
/// its Patroni's REST API. Nothing in it blocks a thread; the body is held up to a limit.
public struct HTTPExchange: Sendable {
    /// Where the server listens.
    public enum Target: Sendable, Equatable, CustomStringConvertible {
        case tcp(host: String, port: Int)
        case unix(path: String)

        public var description: String {
            switch self {
            case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
            case .unix(let path): path
            }
        }
    }

    public struct Response: Sendable {
        public var status: HTTPResponseStatus
        public var body: Data
    }

    /// Why no response came, split the way callers explain it.
    public enum Failure: Error {
        /// No connection: nothing listens there, or it refused or timed out the connect.
        case connect(any Error)
        /// Connected, but the whole response did not arrive before the deadline.
        case timedOut
        /// Connected, then the exchange failed (closed early, unreadable, too large).
        case failed(any Error)
    }

    public var target: Target
    public var timeout: Duration
    public var maxBodyBytes: Int
    private let group: EventLoopGroup

    public init(
        target: Target,
        timeout: Duration,
        maxBodyBytes: Int = 16 << 20,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.target = target
        self.timeout = timeout
        self.maxBodyBytes = maxBodyBytes
        self.group = group
    }

    /// Sends `method path` with `body` (JSON, when there is one) and `Connection: close`, and
    /// returns the response whatever its status.
    public func send(_ method: HTTPMethod, _ path: String, host: String, body: Data = Data()) async throws(Failure) -> Response {
        let deadline = NIODeadline.now() + TimeAmount(self.timeout)
        let promise = self.group.next().makePromise(of: (HTTPResponseStatus, Data).self)
        let channel: Channel
        do {
            let bootstrap = ClientBootstrap(group: self.group)
                .connectTimeout(TimeAmount(self.timeout))
                .channelInitializer { [maxBodyBytes] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPResponseCollector(promise: promise, maxBodyBytes: maxBodyBytes)
                        )
                    }
                }
            switch self.target {
            case .tcp(let host, let port): channel = try await bootstrap.connect(host: host, port: port).get()
            case .unix(let path): channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
            }
        } catch {
            promise.fail(error)
            throw .connect(error)
        }
        let timer = channel.eventLoop.scheduleTask(deadline: deadline) {
            promise.fail(HTTPExchangeTimedOut())
            channel.close(promise: nil)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "Accept", value: "application/json")
        if !body.isEmpty { headers.add(name: "Content-Type", value: "application/json") }
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        do {
            let (status, body) = try await promise.futureResult.get()
            timer.cancel()
            channel.close(promise: nil)
            return Response(status: status, body: body)
        } catch is HTTPExchangeTimedOut {
            throw .timedOut
        } catch {
            timer.cancel()
            channel.close(promise: nil)
            throw .failed(error)
        }
    }
}

extension HTTPExchange {
    /// A failure in the system's words (`Connection refused`), for messages that name the server.
    public static func reason(_ error: any Error) -> String {
        if let code = (error as? IOError)?.errnoCode { return String(cString: strerror(code)) }
        if let error = error as? ChannelError, case .connectTimeout = error { return "connect timed out" }
        return "\(error)"
    }
}

/// The deadline passed; only `send` sees it, as `Failure.timedOut`.
private struct HTTPExchangeTimedOut: Error {}
