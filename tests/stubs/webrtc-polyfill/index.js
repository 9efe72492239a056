// WebRTC is unavailable in these tests (see package.json); simple-peer and
// webtorrent then skip WebRTC peers and use TCP.
export const RTCPeerConnection = undefined
export const RTCSessionDescription = undefined
export const RTCIceCandidate = undefined
export default {}
