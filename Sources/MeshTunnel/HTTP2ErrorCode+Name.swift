import NIOHTTP2

extension HTTP2ErrorCode {
    /// The code as RFC 9113 §7 names it (`PROTOCOL_ERROR`), for log lines an operator can look up;
    /// swift-nio-http2's own description reads `HTTP2ErrorCode<0x1 ProtocolError>`.
    var rfcName: String {
        let names = [
            "NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR", "SETTINGS_TIMEOUT", "STREAM_CLOSED",
            "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
            "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
        ]
        return names.indices.contains(self.networkCode) ? names[self.networkCode] : "error code 0x\(String(self.networkCode, radix: 16))"
    }
}
