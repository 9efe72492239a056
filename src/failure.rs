//! Why a request was refused: a value where the refusal is decided, its
//! label (the `reason` of `edge_tracker_failures_total`, the `x-failure`
//! header) and, for a refusal whose words do not depend on the request,
//! the one text clients are sent.

/// Why a request was answered with a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    InvalidQuery,
    InvalidAnnounce,
    InvalidScrape,
    MethodNotAllowed,
    Misconfigured,
    MissingPasskey,
    UnknownPasskey,
    AccountBanned,
    ClientBanned,
    UnregisteredTorrent,
    RatioTooLow,
    AccountLookupFailed,
    SwarmUnavailable,
    SwarmOverloaded,
    ScrapeUnavailable,
    RateLimited,
    TorrentBlocked,
    Other,
}

impl Failure {
    pub const ALL: [Failure; 18] = [
        Failure::InvalidQuery,
        Failure::InvalidAnnounce,
        Failure::InvalidScrape,
        Failure::MethodNotAllowed,
        Failure::Misconfigured,
        Failure::MissingPasskey,
        Failure::UnknownPasskey,
        Failure::AccountBanned,
        Failure::ClientBanned,
        Failure::UnregisteredTorrent,
        Failure::RatioTooLow,
        Failure::AccountLookupFailed,
        Failure::SwarmUnavailable,
        Failure::SwarmOverloaded,
        Failure::ScrapeUnavailable,
        Failure::RateLimited,
        Failure::TorrentBlocked,
        Failure::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Failure::InvalidQuery => "invalid_query",
            Failure::InvalidAnnounce => "invalid_announce",
            Failure::InvalidScrape => "invalid_scrape",
            Failure::MethodNotAllowed => "method_not_allowed",
            Failure::Misconfigured => "misconfigured",
            Failure::MissingPasskey => "missing_passkey",
            Failure::UnknownPasskey => "unknown_passkey",
            Failure::AccountBanned => "account_banned",
            Failure::ClientBanned => "client_banned",
            Failure::UnregisteredTorrent => "unregistered_torrent",
            Failure::RatioTooLow => "ratio_too_low",
            Failure::AccountLookupFailed => "account_lookup_failed",
            Failure::SwarmUnavailable => "swarm_unavailable",
            Failure::SwarmOverloaded => "swarm_overloaded",
            Failure::ScrapeUnavailable => "scrape_unavailable",
            Failure::RateLimited => "rate_limited",
            Failure::TorrentBlocked => "torrent_blocked",
            Failure::Other => "other",
        }
    }

    pub fn from_label(label: &str) -> Option<Failure> {
        Failure::ALL.into_iter().find(|f| f.label() == label)
    }

    /// The `failure reason` clients are sent. The malformed-request
    /// failures and `Misconfigured` are sent with the request's own detail
    /// (the parse error; the configuration error after this text);
    /// `Other` covers refusals with texts of their own.
    pub fn text(self) -> &'static str {
        match self {
            Failure::InvalidQuery => "invalid query",
            Failure::InvalidAnnounce => "invalid announce",
            Failure::InvalidScrape => "invalid scrape",
            Failure::MethodNotAllowed => "method not allowed: use GET",
            Failure::Misconfigured => "tracker misconfigured",
            Failure::MissingPasskey => "missing passkey: use the personal announce URL from your account",
            Failure::UnknownPasskey => "unknown or revoked passkey",
            Failure::AccountBanned => "account banned",
            Failure::ClientBanned => "this BitTorrent client is banned on this tracker",
            Failure::UnregisteredTorrent => "torrent not registered on this tracker",
            Failure::RatioTooLow => "your ratio is below the minimum: you may keep seeding, but not start new downloads",
            Failure::SwarmOverloaded => "this torrent is too busy right now, retry later",
            Failure::ScrapeUnavailable => "scrape temporarily unavailable, retry later",
            Failure::AccountLookupFailed | Failure::SwarmUnavailable => "tracker temporarily unavailable, retry later",
            Failure::RateLimited => "too many requests from your address: slow down",
            Failure::TorrentBlocked => "this torrent is blocked on this tracker",
            Failure::Other => "request refused",
        }
    }

    /// Whether the tracker (not the client) is at fault: worth an error log and an alert.
    pub fn is_server_side(self) -> bool {
        matches!(
            self,
            Failure::Misconfigured
                | Failure::AccountLookupFailed
                | Failure::SwarmUnavailable
                | Failure::SwarmOverloaded
                | Failure::ScrapeUnavailable
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_labels_round_trip_and_are_unique() {
        for f in Failure::ALL {
            assert_eq!(Failure::from_label(f.label()), Some(f));
        }
        let labels: std::collections::BTreeSet<_> = Failure::ALL.iter().map(|f| f.label()).collect();
        assert_eq!(labels.len(), Failure::ALL.len());
    }

    #[test]
    fn each_refusal_a_client_can_tell_apart_has_its_own_text() {
        let texts: std::collections::BTreeSet<_> = Failure::ALL.iter().map(|f| f.text()).collect();
        // Account lookups and swarms fail alike for a client: one text.
        assert_eq!(texts.len(), Failure::ALL.len() - 1);
        assert_eq!(Failure::AccountLookupFailed.text(), Failure::SwarmUnavailable.text());
    }
}
