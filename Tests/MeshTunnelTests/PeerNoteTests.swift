import NIOCore
import XCTest

@testable import MeshTunnel

final class PeerNoteTests: XCTestCase {
    func testLineRoundTrip() throws {
        let note = PeerNote(topic: "backend-report", payload: #"{"node":"db1","sequence":7}"#)
        let line = try XCTUnwrap(note.line)
        XCTAssertEqual(line, "note backend-report {\"node\":\"db1\",\"sequence\":7}\n")
        XCTAssertEqual(PeerNote(line: String(line.dropLast())), note)
    }

    func testPayloadMayContainSpacesAndBeEmpty() {
        XCTAssertEqual(PeerNote(line: "note a.b-1 x y  z"), PeerNote(topic: "a.b-1", payload: "x y  z"))
        XCTAssertEqual(PeerNote(line: "note t "), PeerNote(topic: "t", payload: ""))
    }

    func testUnsendableNotesHaveNoLine() {
        XCTAssertNil(PeerNote(topic: "Upper", payload: "x").line, "topics are lowercase names")
        XCTAssertNil(PeerNote(topic: "", payload: "x").line)
        XCTAssertNil(PeerNote(topic: "t", payload: "two\nlines").line, "a newline would split the note")
        XCTAssertNil(PeerNote(topic: "t", payload: String(repeating: "x", count: PeerNote.maxLine)).line)
        XCTAssertNotNil(PeerNote(topic: "t", payload: String(repeating: "x", count: PeerNote.maxLine - 8)).line)
    }

    func testOtherControlLinesAreNotNotes() {
        XCTAssertNil(PeerNote(line: "open 1 postgres"))
        XCTAssertNil(PeerNote(line: "refuse 1 403"))
        XCTAssertNil(PeerNote(line: "note"))
        XCTAssertNil(PeerNote(line: "note nospace"))
        XCTAssertNil(PeerNote(line: "note BAD payload"))
    }

    func testLineBufferAcceptsNotesUpToTheBound() {
        var buffer = LineBuffer()
        let long = "note t " + String(repeating: "x", count: PeerNote.maxLine - 8)
        XCTAssertEqual(buffer.append(ByteBuffer(string: long + "\n"))?.first, long)
        XCTAssertNil(
            buffer.append(ByteBuffer(string: String(repeating: "y", count: PeerNote.maxLine + 1))),
            "an endless line closes the stream"
        )
    }
}
