import Foundation
import MeshControlModel
import NIOHTTP1

/// An HTTP response of the control API before it is written: a status and a body, JSON except for
/// `/metrics`.
public struct ControlResponse: Sendable {
    public var status: HTTPResponseStatus
    public var body: Data
    /// Extra headers, e.g. `Allow` on a 405.
    public var headers: [(String, String)]
    public var contentType: String

    public init(
        status: HTTPResponseStatus,
        body: Data,
        headers: [(String, String)] = [],
        contentType: String = "application/json"
    ) {
        self.status = status
        self.body = body
        self.headers = headers
        self.contentType = contentType
    }

    public static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> ControlResponse {
        do {
            return ControlResponse(status: status, body: try ControlJSON.encoder().encode(value) + Data("\n".utf8))
        } catch {
            return .error(.internalServerError, "cannot encode the response: \(error)")
        }
    }

    public static func error(_ status: HTTPResponseStatus, _ message: String) -> ControlResponse {
        let body = (try? ControlJSON.encoder().encode(ControlErrorBody(error: message))) ?? Data()
        return ControlResponse(status: status, body: body + Data("\n".utf8))
    }
}
