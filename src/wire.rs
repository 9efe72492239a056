//! The message the Worker sends a swarm's Durable Object: an announce that
//! is already validated, in a fixed binary layout (116 bytes), so the object
//! never re-parses a query string.

use crate::announce::AnnounceEvent;
use crate::peer::{InfoHash, PeerAddr, PeerId, PeerKey};
use crate::response::PeerListFormat;
use crate::swarm::PeerAnnounce;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwarmAnnounce {
    pub info_hash: InfoHash,
    pub peer: PeerAnnounce,
    pub uploaded: u64,
    pub downloaded: u64,
    /// Already capped by the configuration.
    pub numwant: u16,
    pub format: PeerListFormat,
    /// Private mode only: who announces and what they may do.
    pub account: Option<Account>,
}

/// The announcing user in private mode, as the Worker resolved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub user: u64,
    /// The ratio rule lets this user start new downloads.
    pub may_leech: bool,
    /// Downloads on this torrent are not counted.
    pub freeleech: bool,
}

const VERSION: u8 = 3;
pub const ENCODED_LEN: usize = 1 + 20 + 20 + 20 + PeerAddr::ENCODED_LEN + 8 + 8 + 8 + 1 + 2 + 1 + 8 + 1;

impl SwarmAnnounce {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ENCODED_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.info_hash.0);
        out.extend_from_slice(&self.peer.peer_id.0);
        out.extend_from_slice(&self.peer.key.0);
        out.extend_from_slice(&self.peer.addr.encode());
        out.extend_from_slice(&self.peer.left.to_be_bytes());
        out.extend_from_slice(&self.uploaded.to_be_bytes());
        out.extend_from_slice(&self.downloaded.to_be_bytes());
        out.push(self.peer.event.code());
        out.extend_from_slice(&self.numwant.to_be_bytes());
        out.push(self.format.compact as u8 | (self.format.no_peer_id as u8) << 1);
        let account = self.account.unwrap_or(Account { user: 0, may_leech: true, freeleech: false });
        out.extend_from_slice(&account.user.to_be_bytes());
        out.push(self.account.is_some() as u8 | (account.may_leech as u8) << 1 | (account.freeleech as u8) << 2);
        out
    }

    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() != ENCODED_LEN || b[0] != VERSION {
            return None;
        }
        let mut r = Reader { b, at: 1 };
        let info_hash = InfoHash(r.array()?);
        let peer_id = PeerId(r.array()?);
        let key = PeerKey(r.array()?);
        let addr = PeerAddr::decode(r.take(PeerAddr::ENCODED_LEN)?)?;
        let left = u64::from_be_bytes(r.array()?);
        let uploaded = u64::from_be_bytes(r.array()?);
        let downloaded = u64::from_be_bytes(r.array()?);
        let event = AnnounceEvent::from_code(r.array::<1>()?[0])?;
        let numwant = u16::from_be_bytes(r.array()?);
        let flags = r.array::<1>()?[0];
        let user = u64::from_be_bytes(r.array()?);
        let account_flags = r.array::<1>()?[0];
        let account = (account_flags & 1 != 0).then_some(Account {
            user,
            may_leech: account_flags & 2 != 0,
            freeleech: account_flags & 4 != 0,
        });
        Some(SwarmAnnounce {
            info_hash,
            peer: PeerAnnounce { key, peer_id, addr, left, event },
            uploaded,
            downloaded,
            numwant,
            format: PeerListFormat { compact: flags & 1 != 0, no_peer_id: flags & 2 != 0 },
            account,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at + n)?;
        self.at += n;
        Some(s)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = SwarmAnnounce {
            info_hash: InfoHash([7; 20]),
            peer: PeerAnnounce {
                key: PeerKey([3; 20]),
                peer_id: PeerId([9; 20]),
                addr: PeerAddr::new("2001:db8::2".parse().unwrap(), 51413),
                left: u64::MAX,
                event: AnnounceEvent::Completed,
            },
            uploaded: 1,
            downloaded: 2,
            numwant: 200,
            format: PeerListFormat { compact: false, no_peer_id: true },
            account: None,
        };
        let bytes = m.encode();
        assert_eq!(bytes.len(), ENCODED_LEN);
        assert_eq!(SwarmAnnounce::decode(&bytes), Some(m));
        let private = SwarmAnnounce { account: Some(Account { user: 42, may_leech: false, freeleech: true }), ..m };
        assert_eq!(SwarmAnnounce::decode(&private.encode()), Some(private));
        assert_eq!(SwarmAnnounce::decode(&bytes[1..]), None);
    }
}
