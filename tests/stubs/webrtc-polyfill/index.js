// WebRTC is unavailable in these tests (see package.json); simple-peer and
// webtorrent then skip WebRTC peers and use TCP. A test may install a fake
// (globalThis.EDGE_TRACKER_FAKE_WEBRTC, before importing any client) to
// exercise WebRTC signalling through the WebSocket tracker.
const fake = globalThis.EDGE_TRACKER_FAKE_WEBRTC ?? {}
export const RTCPeerConnection = fake.RTCPeerConnection
export const RTCSessionDescription = fake.RTCSessionDescription
export const RTCIceCandidate = fake.RTCIceCandidate
export default {}
